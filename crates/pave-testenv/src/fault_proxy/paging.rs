//! Listings as AWS pages them, and how many entries an answer listed.
//!
//! AWS honours `MaxResults` (EC2) and `MaxRecords` (RDS) on every describe pave
//! lists with, and answers a `NextToken` / `Marker` when more remain. moto 5.2.5
//! pages only DescribeInstances and DescribeDBInstances; DescribeVpcs,
//! DescribeSubnets, DescribeSecurityGroups and DescribeDBSubnetGroups it answers
//! whole, whatever the request asked for. So against plain moto a client's page
//! size is never seen at work for those, and a test of how pave's driver pages
//! (smaller pages when a page is slow, [`super::Fault::SlowPages`]) would prove
//! nothing. With [`super::FaultProxy::set_aws_paging`] on, the proxy pages those four
//! itself: it cuts moto's whole answer to the page asked for and adds a token of its
//! own (`fault-proxy-page-<offset>`) when entries remain; a request carrying such a
//! token is forwarded without it (moto ignores it anyway) and answered from that
//! offset. Any page size is accepted, as AWS's own range is the client's business.
//! Pages are cut from one answer per page, so an entry created or deleted between
//! two pages can shift the rest by one, as AWS's eventual consistency may too.
//!
//! [`items`] counts the entries of any of the six listings' answers, for the request
//! log ([`super::Seen::items`]) and for slow pages.

use super::form;
use super::xml::{self, Edits, Element};

/// The answer shape and paging parameters of one listing action.
struct Listing {
    action: &'static str,
    /// From the root to the element whose children are the entries.
    list: &'static [&'static str],
    /// The request's page size parameter.
    size: &'static str,
    /// The request's token parameter, and the answer's token element, a sibling of
    /// the list.
    token: &'static str,
    answer_token: &'static str,
    /// moto pages this one itself: the proxy only counts.
    moto_pages: bool,
}

const fn ec2(action: &'static str, list: &'static [&'static str], moto_pages: bool) -> Listing {
    Listing {
        action,
        list,
        size: "MaxResults",
        token: "NextToken",
        answer_token: "nextToken",
        moto_pages,
    }
}

const fn rds(action: &'static str, list: &'static [&'static str], moto_pages: bool) -> Listing {
    Listing {
        action,
        list,
        size: "MaxRecords",
        token: "Marker",
        answer_token: "Marker",
        moto_pages,
    }
}

const LISTINGS: [Listing; 6] = [
    ec2("DescribeVpcs", &["vpcSet"], false),
    ec2("DescribeSubnets", &["subnetSet"], false),
    ec2("DescribeSecurityGroups", &["securityGroupInfo"], false),
    // Entries are reservations, which is what moto pages by (pave launches one
    // instance per reservation).
    ec2("DescribeInstances", &["reservationSet"], true),
    rds(
        "DescribeDBInstances",
        &["DescribeDBInstancesResult", "DBInstances"],
        true,
    ),
    rds(
        "DescribeDBSubnetGroups",
        &["DescribeDBSubnetGroupsResult", "DBSubnetGroups"],
        false,
    ),
];

const TOKEN_PREFIX: &str = "fault-proxy-page-";

fn listing(action: &str) -> Option<&'static Listing> {
    LISTINGS.iter().find(|l| l.action == action)
}

fn list_of<'a>(listing: &Listing, root: &'a Element) -> Option<&'a Element> {
    root.at(listing.list)
}

/// How many entries a listing's answer holds; `None` for other actions and for
/// answers that are not a listing (errors).
pub(super) fn items(action: &str, body: &[u8]) -> Option<usize> {
    let listing = listing(action)?;
    let doc = std::str::from_utf8(body).ok()?;
    let root = xml::parse(doc)?;
    Some(list_of(listing, &root)?.children.len())
}

/// A page the proxy cuts from moto's whole answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Cut {
    listing: &'static str,
    offset: usize,
    size: usize,
    /// The request's token parameter, to take out before forwarding, if it is the
    /// proxy's.
    pub strip: Option<&'static str>,
}

/// The page to cut for this request, if the proxy pages its action and it asked for
/// a page size.
pub(super) fn plan(action: &str, params: &[(String, String)]) -> Option<Cut> {
    let listing = listing(action).filter(|l| !l.moto_pages)?;
    let size = form::get(params, listing.size)?.parse().ok()?;
    let ours = form::get(params, listing.token).and_then(|t| t.strip_prefix(TOKEN_PREFIX));
    let offset = ours.and_then(|o| o.parse().ok()).unwrap_or(0);
    Some(Cut {
        listing: listing.action,
        offset,
        size,
        strip: ours.map(|_| listing.token),
    })
}

/// moto's whole answer cut to the page, with the proxy's token if entries remain;
/// `None` when the answer is already that page (or not a listing: an error).
pub(super) fn cut(cut: &Cut, body: &[u8]) -> Option<String> {
    let listing = listing(cut.listing)?;
    let doc = std::str::from_utf8(body).ok()?;
    let root = xml::parse(doc)?;
    let list = list_of(listing, &root)?;
    let parent = &listing.list[..listing.list.len() - 1];
    let has_token = root
        .at(parent)
        .and_then(|p| p.child(listing.answer_token))
        .is_some_and(|t| !t.text(doc).trim().is_empty());
    let entries = &list.children;
    let start = cut.offset.min(entries.len());
    let end = start.saturating_add(cut.size.max(1)).min(entries.len());
    if has_token || (start == 0 && end == entries.len()) {
        return None;
    }
    let mut edits = Edits::default();
    match entries.get(start..end).filter(|kept| !kept.is_empty()) {
        Some(kept) => {
            edits.replace(list.inner.start..kept[0].span.start, "");
            edits.replace(kept[kept.len() - 1].span.end..list.inner.end, "");
        }
        None => edits.replace(list.inner.clone(), ""),
    }
    if end < entries.len() {
        edits.insert(
            list.span.end,
            format!(
                "<{name}>{TOKEN_PREFIX}{end}</{name}>",
                name = listing.answer_token
            ),
        );
    }
    Some(edits.apply(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const GROUPS: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<DescribeSecurityGroupsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15\"><securityGroupInfo><item><groupId>sg-1</groupId></item><item><groupId>sg-2</groupId></item><item><groupId>sg-3</groupId></item></securityGroupInfo><requestId>r</requestId></DescribeSecurityGroupsResponse>";

    const SUBNET_GROUPS: &str = "<DescribeDBSubnetGroupsResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeDBSubnetGroupsResult><DBSubnetGroups><DBSubnetGroup><DBSubnetGroupName>a</DBSubnetGroupName></DBSubnetGroup><DBSubnetGroup><DBSubnetGroupName>b</DBSubnetGroupName></DBSubnetGroup></DBSubnetGroups></DescribeDBSubnetGroupsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeDBSubnetGroupsResponse>";

    fn ids(doc: &str) -> Vec<String> {
        let root = xml::parse(doc).unwrap();
        root.child("securityGroupInfo")
            .unwrap()
            .children
            .iter()
            .map(|i| i.child_text(doc, "groupId").unwrap())
            .collect()
    }

    fn token(doc: &str) -> Option<String> {
        xml::parse(doc).unwrap().child_text(doc, "nextToken")
    }

    #[test]
    fn whole_answers_are_cut_into_pages_with_the_proxys_tokens() {
        let first = plan(
            "DescribeSecurityGroups",
            &params(&[("Action", "DescribeSecurityGroups"), ("MaxResults", "2")]),
        )
        .unwrap();
        assert_eq!(first.strip, None);
        let page = cut(&first, GROUPS.as_bytes()).unwrap();
        assert_eq!(ids(&page), ["sg-1", "sg-2"]);
        let next = token(&page).unwrap();
        assert_eq!(next, "fault-proxy-page-2");
        assert_eq!(items("DescribeSecurityGroups", page.as_bytes()), Some(2));

        let second = plan(
            "DescribeSecurityGroups",
            &params(&[("MaxResults", "2"), ("NextToken", &next)]),
        )
        .unwrap();
        assert_eq!(second.strip, Some("NextToken"));
        let page = cut(&second, GROUPS.as_bytes()).unwrap();
        assert_eq!(ids(&page), ["sg-3"]);
        assert_eq!(token(&page), None);
        assert!(
            page.ends_with(
                "</securityGroupInfo><requestId>r</requestId></DescribeSecurityGroupsResponse>"
            ),
            "{page}"
        );

        // Past the end: an empty list, no token.
        let beyond = plan(
            "DescribeSecurityGroups",
            &params(&[("MaxResults", "2"), ("NextToken", "fault-proxy-page-9")]),
        )
        .unwrap();
        let page = cut(&beyond, GROUPS.as_bytes()).unwrap();
        assert_eq!(ids(&page), Vec::<String>::new());
        assert_eq!(token(&page), None);
    }

    #[test]
    fn an_answer_that_is_already_the_page_passes_unchanged() {
        let all = plan("DescribeSecurityGroups", &params(&[("MaxResults", "1000")])).unwrap();
        assert_eq!(cut(&all, GROUPS.as_bytes()), None);
        // Without a page size, moto's answer is the answer; moto's own paging, and
        // error answers, are left alone.
        assert_eq!(plan("DescribeSecurityGroups", &params(&[])), None);
        assert_eq!(
            plan("DescribeInstances", &params(&[("MaxResults", "5")])),
            None
        );
        let error = "<Response><Errors><Error><Code>X</Code></Error></Errors></Response>";
        assert_eq!(cut(&all, error.as_bytes()), None);
        let with_token = GROUPS.replace("<requestId>", "<nextToken>moto-1</nextToken><requestId>");
        let small = plan("DescribeSecurityGroups", &params(&[("MaxResults", "1")])).unwrap();
        assert_eq!(cut(&small, with_token.as_bytes()), None);
    }

    #[test]
    fn rds_pages_carry_a_marker_in_the_result() {
        let first = plan("DescribeDBSubnetGroups", &params(&[("MaxRecords", "1")])).unwrap();
        let page = cut(&first, SUBNET_GROUPS.as_bytes()).unwrap();
        assert!(
            page.contains("<DBSubnetGroups><DBSubnetGroup><DBSubnetGroupName>a</DBSubnetGroupName></DBSubnetGroup></DBSubnetGroups><Marker>fault-proxy-page-1</Marker></DescribeDBSubnetGroupsResult>"),
            "{page}"
        );
        let second = plan(
            "DescribeDBSubnetGroups",
            &params(&[("MaxRecords", "1"), ("Marker", "fault-proxy-page-1")]),
        )
        .unwrap();
        assert_eq!(second.strip, Some("Marker"));
        let page = cut(&second, SUBNET_GROUPS.as_bytes()).unwrap();
        assert!(
            page.contains("<DBSubnetGroupName>b</DBSubnetGroupName>") && !page.contains("Marker"),
            "{page}"
        );
        assert_eq!(items("DescribeDBSubnetGroups", page.as_bytes()), Some(1));
    }

    #[test]
    fn items_are_counted_for_listings_only() {
        assert_eq!(items("DescribeSecurityGroups", GROUPS.as_bytes()), Some(3));
        assert_eq!(
            items("DescribeDBSubnetGroups", SUBNET_GROUPS.as_bytes()),
            Some(2)
        );
        assert_eq!(items("CreateVpc", GROUPS.as_bytes()), None);
        assert_eq!(
            items("DescribeVpcs", b"<Response><Errors/></Response>"),
            None
        );
        let empty = "<DescribeInstancesResponse><reservationSet/><requestId>r</requestId></DescribeInstancesResponse>";
        assert_eq!(items("DescribeInstances", empty.as_bytes()), Some(0));
    }
}
