//! The AWS query protocol's request parameters: `application/x-www-form-urlencoded`
//! pairs (`Action=TerminateInstances&InstanceId.1=i-1&InstanceId.2=i-2`), with lists
//! flattened into numbered names. Decoded here once, so the request log can show
//! which resources a call named and the slow states can tell which resource a call
//! acts on.

/// Decodes `a=1&b=x+y%21` into `[("a", "1"), ("b", "x y!")]`, in order. `+` is a
/// space and `%XX` a byte (the form encoding the SDKs use); a `%` not followed by
/// two hex digits is kept as it is, and bytes that are not UTF-8 become U+FFFD, so a
/// malformed body is still logged rather than lost.
pub(super) fn decode(form: &[u8]) -> Vec<(String, String)> {
    form.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (unescape(name), unescape(value))
        })
        .collect()
}

/// The form without its pairs named `name` (compared decoded); every other byte as
/// it was, so what the proxy forwards differs from what the client sent only there.
pub(super) fn without(form: &[u8], name: &str) -> Vec<u8> {
    let kept: Vec<&[u8]> = form
        .split(|b| *b == b'&')
        .filter(|pair| {
            let key = pair.split(|b| *b == b'=').next().unwrap_or_default();
            unescape(key) != name
        })
        .collect();
    kept.join(&b'&')
}

fn unescape(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// `name=value`, encoded for appending to a form body (`&` and the separator
/// escaped; everything outside the unreserved set percent-encoded).
pub(super) fn encode_pair(name: &str, value: &str) -> String {
    format!("{}={}", escape(name), escape(value))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The values of the list `prefix` (`InstanceId` → `InstanceId.1`, `InstanceId.2`,
/// …) in index order, whatever order the pairs came in. Names with more after the
/// index (`Filter.1.Name`) are not members: ask for `Filter.1.Value` for those.
pub(super) fn list<'a>(params: &'a [(String, String)], prefix: &str) -> Vec<&'a str> {
    let mut members: Vec<(u64, &str)> = params
        .iter()
        .filter_map(|(name, value)| {
            let index = name.strip_prefix(prefix)?.strip_prefix('.')?;
            Some((index.parse().ok()?, value.as_str()))
        })
        .collect();
    members.sort_by_key(|(index, _)| *index);
    members.into_iter().map(|(_, value)| value).collect()
}

/// The first value of `name`.
pub(super) fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// An EC2 describe filter as the query protocol flattens it: `Filter.N.Name` and its
/// `Filter.N.Value.M`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Filter {
    /// `N`, to address the filter when adding a value.
    pub index: u64,
    pub name: String,
    pub values: Vec<String>,
    /// The first value index past those used: where an added value goes.
    pub next_value: u64,
}

/// The filters of an EC2 describe (`Filter.N.*`) or of an RDS one
/// (`Filters.Filter.N.Name`, `Filters.Filter.N.Values.Value.M`), by index.
pub(super) fn filters(params: &[(String, String)], rds: bool) -> Vec<Filter> {
    let (prefix, values) = if rds {
        ("Filters.Filter.", "Values.Value")
    } else {
        ("Filter.", "Value")
    };
    let mut found: Vec<Filter> = params
        .iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(prefix)?;
            let (index, field) = rest.split_once('.')?;
            (field == "Name").then(|| (index.parse().ok(), value))
        })
        .filter_map(|(index, name)| {
            let index = index?;
            let member = format!("{prefix}{index}.{values}");
            let next_value = params
                .iter()
                .filter_map(|(n, _)| n.strip_prefix(&member)?.strip_prefix('.')?.parse().ok())
                .max()
                .map_or(1, |last: u64| last + 1);
            Some(Filter {
                index,
                name: name.clone(),
                values: list(params, &member)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                next_value,
            })
        })
        .collect();
    found.sort_by_key(|f| f.index);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus_and_keeps_what_is_malformed() {
        assert_eq!(
            decode(b"Action=DescribeVpcs&Filter.1.Name=tag%3Apave.dev%2Fname&Msg=a+b%20c&Bad=100%&Odd=%zz&Flag&=v"),
            [
                ("Action", "DescribeVpcs"),
                ("Filter.1.Name", "tag:pave.dev/name"),
                ("Msg", "a b c"),
                ("Bad", "100%"),
                ("Odd", "%zz"),
                ("Flag", ""),
                ("", "v"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert_eq!(decode(b"K=%E2%86%92&L=%FF")[0].1, "→");
        assert_eq!(decode(b"K=%E2%86%92&L=%FF")[1].1, "\u{FFFD}");
        assert_eq!(decode(b""), []);
        assert_eq!(decode(b"A=%4"), [("A".to_owned(), "%4".to_owned())]);
    }

    #[test]
    fn lists_come_in_index_order_and_exclude_nested_names() {
        let params = decode(
            b"InstanceId.2=i-b&InstanceId.10=i-j&InstanceId.1=i-a&InstanceIdX.1=no&InstanceId.1.Extra=no",
        );
        assert_eq!(list(&params, "InstanceId"), ["i-a", "i-b", "i-j"]);
        assert_eq!(get(&params, "InstanceId.2"), Some("i-b"));
        assert_eq!(get(&params, "Nope"), None);
    }

    #[test]
    fn filters_of_both_services() {
        let ec2 = decode(
            b"Filter.2.Name=instance-state-name&Filter.2.Value.1=pending&Filter.2.Value.2=running&Filter.1.Name=tag%3Ak&Filter.1.Value.1=v",
        );
        assert_eq!(
            filters(&ec2, false),
            [
                Filter {
                    index: 1,
                    name: "tag:k".into(),
                    values: vec!["v".into()],
                    next_value: 2,
                },
                Filter {
                    index: 2,
                    name: "instance-state-name".into(),
                    values: vec!["pending".into(), "running".into()],
                    next_value: 3,
                },
            ]
        );
        let rds = decode(b"Filters.Filter.1.Name=engine&Filters.Filter.1.Values.Value.1=postgres");
        assert_eq!(filters(&rds, true)[0].values, ["postgres"]);
        assert_eq!(filters(&rds, false), []);
    }

    #[test]
    fn a_named_pair_is_taken_out_and_the_rest_kept_byte_for_byte() {
        assert_eq!(
            without(
                b"Action=DescribeVpcs&NextToken=t%2B1&MaxResults=5&Next%54oken=x",
                "NextToken"
            ),
            b"Action=DescribeVpcs&MaxResults=5"
        );
        assert_eq!(without(b"A=1&B=2", "C"), b"A=1&B=2");
    }

    #[test]
    fn encoded_pairs_decode_to_themselves() {
        let pair = encode_pair("Filter.1.Value.3", "shutting-down & a+b=c/é");
        assert_eq!(
            decode(pair.as_bytes()),
            [(
                "Filter.1.Value.3".to_owned(),
                "shutting-down & a+b=c/é".to_owned()
            )]
        );
    }
}
