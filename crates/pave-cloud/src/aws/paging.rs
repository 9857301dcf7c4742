//! Listings that make progress page by page (the inventory's describes).
//!
//! A listing is as slow as the region is large, so no fixed timeout suits the whole
//! of it: at 400 environments one DescribeSecurityGroups against moto outgrew pave's
//! per-call timeout, and the listing, retried whole, never completed. Instead every
//! page has its own timeout ([`super::PAGE_TIMEOUT`]), and a page that times out is
//! asked again, from the same `NextToken`, at half the size, down to a floor; only a
//! page of the floor's size that still times out fails the listing (Recoverable,
//! code `Timeout`, naming the call). So a listing of any size completes as long as
//! each small page can be answered, and what it already has is never fetched again.
//!
//! At rest nothing changes: the first page is the API's largest (EC2's 1000, RDS's
//! 100, what an SDK paginator sends or the service defaults to), so a listing of up to
//! that many resources per type is still one call, and the per-resync call count the
//! benchmark holds pave to does not move.
//!
//! After a timeout the listing remembers the smallest size that timed out and the
//! largest that was answered, and each answered page moves halfway back towards the
//! failed size (a binary search for the largest size that fits), stopping once the
//! step would be under an eighth. Growing straight back to full size would time out
//! again on every other page; never growing would make a momentary stall cost the
//! rest of the listing its page size. The memory lasts one listing: the next one
//! starts at full size again, because what made a page slow (a loaded endpoint, a
//! neighbour's burst) has often passed by then, and a region that stays slow costs a
//! few timed-out pages per resync, not a failure.
//!
//! Measured against moto 5.2.5 (`DescribeSecurityGroups` filtered on
//! `tag:pave.dev/cluster-id`, MaxResults 1000/200/50; the numbers are in the comment
//! at [`EC2_PAGES`]): moto's time is per account scanned, not per item returned. It
//! finds each group's tags by scanning every tag in the account, for every group the
//! tag filter looks at and again for every group it returns, so a query returning 20
//! groups costs about what one returning 400 does. And moto answers DescribeSecurityGroups, DescribeVpcs,
//! DescribeSubnets and DescribeDBSubnetGroups whole, ignoring MaxResults/MaxRecords
//! (it pages only DescribeInstances and DescribeDBInstances). Smaller pages therefore
//! cannot rescue a listing of those from moto itself; against AWS, which pages every
//! one of them and indexes tags, they do, and the fault proxy's AWS paging
//! (`pave_testenv::fault_proxy`) makes moto's answers page the same way for tests.

use std::future::Future;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;

use super::CONNECT_TIMEOUT;
use crate::model::CloudError;

/// The page sizes of one API: where a listing starts, and how small it may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PageSizes {
    /// The first page's size, the API's maximum: a listing at rest takes as few calls
    /// as it can.
    pub start: i32,
    /// The smallest page a listing asks for. A page this small that still cannot be
    /// answered in time means the endpoint is not answering, not that the page is too
    /// large; going lower would only add timeouts before the same failure.
    pub floor: i32,
}

/// DescribeVpcs, DescribeSubnets, DescribeSecurityGroups, DescribeInstances: EC2
/// accepts MaxResults 5–1000 for each (the SDK documents the range on
/// DescribeSecurityGroups, EC2's API reference on the others). The floor, 50, is five
/// halvings from the start (1000, 500, 250, 125, 62, 50), which bounds how long a
/// listing takes to give up on an endpoint that answers nothing to six page timeouts.
///
/// Against moto 5.2.5, one `DescribeSecurityGroups` filtered on a cluster's
/// `tag:pave.dev/cluster-id`, in an account of pave-shaped environments (a VPC, two
/// subnets and two groups, each with pave's five tags), on a shared two-core machine
/// (so noisy: medians of three, and the larger account ran under a load of 8):
///
/// | account | groups returned: MaxResults 1000 / 200 / 50 | 20 groups returned | the same 20, `vpc-id` filter first |
/// |---|---|---|---|
/// | 110 environments, 331 groups | 200: 3.5 s / 3.8 s / 3.4 s | 2.1 s | 0.28 s |
/// | 210 environments, 631 groups | 400: 18 s / 55 s / 43 s | 18 s | 0.66 s |
///
/// Every answer held every matching group and no NextToken, whatever MaxResults said.
/// An earlier run with fewer tags per environment (no subnets) at 410 environments,
/// 1231 groups: 16–29 s for the 800 groups of one cluster, 17–24 s for 20. So moto's
/// time follows the groups whose tags it must read (the whole account, unless an
/// attribute filter comes first), not the groups it returns or the page size.
pub(super) const EC2_PAGES: PageSizes = PageSizes {
    start: 1000,
    floor: 50,
};

/// DescribeDBInstances and DescribeDBSubnetGroups: RDS accepts MaxRecords 20–100 and
/// defaults to 100, which is what the SDK paginator sent before (nothing). The floor
/// is RDS's own minimum.
pub(super) const RDS_PAGES: PageSizes = PageSizes {
    start: 100,
    floor: 20,
};

/// One page's answer.
#[derive(Debug)]
pub(super) struct Page<T> {
    pub items: Vec<T>,
    /// The token of the next page; `None` (or empty) on the last.
    pub next: Option<String>,
}

/// The page size a listing asks for next, from what its earlier pages did. Pure, so
/// the policy is tested without a network (see the module documentation).
#[derive(Debug)]
pub(super) struct PageSizer {
    sizes: PageSizes,
    size: i32,
    /// The largest size answered in time during this listing.
    answered: Option<i32>,
    /// The smallest size that timed out during this listing.
    timed_out: Option<i32>,
}

impl PageSizer {
    pub fn new(sizes: PageSizes) -> PageSizer {
        PageSizer {
            sizes,
            size: sizes.start,
            answered: None,
            timed_out: None,
        }
    }

    /// The size of the next page.
    pub fn size(&self) -> i32 {
        self.size
    }

    /// The page was answered in time: move halfway back towards the smallest size that
    /// timed out, if the step is worth a possible timeout.
    pub fn answered(&mut self) {
        self.answered = Some(self.answered.map_or(self.size, |a| a.max(self.size)));
        if let Some(failed) = self.timed_out {
            let probe = self.size + (failed - self.size) / 2;
            if probe - self.size >= (self.size / 8).max(1) {
                self.size = probe.min(self.sizes.start);
            }
        }
    }

    /// The page timed out: the next try of the same page is smaller, back to the
    /// largest size answered if that is smaller than this one, else half. `false` when
    /// this page was already the floor's size: the listing fails.
    pub fn timed_out(&mut self) -> bool {
        let size = self.size;
        if size <= self.sizes.floor {
            return false;
        }
        self.timed_out = Some(self.timed_out.map_or(size, |t| t.min(size)));
        // A size that worked earlier but not now is no longer known to work.
        self.answered = self.answered.filter(|a| *a < size);
        self.size = (size / 2)
            .max(self.answered.unwrap_or(0))
            .max(self.sizes.floor);
        true
    }
}

/// The timeouts of one page's call: the whole call, SDK retries included, within
/// `page`, and a timed-out attempt ends it (a retry of a page too large to answer in
/// time would time out again; the next try is a smaller page instead). Throttling and
/// 5xx answers, which come back fast, are still retried by the SDK within the budget.
/// Complete, because a config override replaces the client's timeout config whole.
pub(super) fn page_timeouts(page: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(page))
        .operation_attempt_timeout(page)
        .operation_timeout(page)
        .build()
}

/// Every item of a listing, fetched page by page with `fetch(token, size, timeouts)`
/// (one call of `operation`; `what` names the listing in errors), with the page size
/// adapted as [`PageSizer`] says. Errors other than a timeout end the listing at once.
pub(super) async fn list<T, F, Fut>(
    operation: &str,
    what: &str,
    sizes: PageSizes,
    page_timeout: Duration,
    mut fetch: F,
) -> Result<Vec<T>, CloudError>
where
    F: FnMut(Option<String>, i32, TimeoutConfig) -> Fut,
    Fut: Future<Output = Result<Page<T>, CloudError>>,
{
    let mut sizer = PageSizer::new(sizes);
    let mut token: Option<String> = None;
    let mut found = Vec::new();
    let mut pages = 0;
    loop {
        let size = sizer.size();
        match fetch(token.clone(), size, page_timeouts(page_timeout)).await {
            Ok(page) => {
                pages += 1;
                found.extend(page.items);
                sizer.answered();
                match page.next.filter(|t| !t.is_empty()) {
                    Some(next) => token = Some(next),
                    None => return Ok(found),
                }
            }
            Err(e) if e.code() == "Timeout" => {
                if !sizer.timed_out() {
                    return Err(CloudError::Recoverable {
                        operation: operation.to_owned(),
                        resource: what.to_owned(),
                        code: "Timeout".to_owned(),
                        message: format!(
                            "not even a page of {size} was answered within {page_timeout:?} \
                             (after {pages} pages, {} items)",
                            found.len()
                        ),
                    });
                }
                tracing::warn!(
                    operation,
                    what,
                    timed_out = size,
                    next = sizer.size(),
                    ?page_timeout,
                    "a listing page timed out; asking again for a smaller page"
                );
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lists `total` items from a service that times out every page larger than
    /// `fits`; returns the sizes asked for, in order, and whether it completed.
    fn simulate(
        sizes: PageSizes,
        total: i32,
        fits: impl Fn(usize, i32) -> bool,
    ) -> (Vec<i32>, bool) {
        let mut sizer = PageSizer::new(sizes);
        let mut left = total;
        let mut asked = Vec::new();
        loop {
            let size = sizer.size();
            asked.push(size);
            if fits(asked.len(), size.min(left)) {
                left -= size;
                sizer.answered();
                if left <= 0 {
                    return (asked, true);
                }
            } else if !sizer.timed_out() {
                return (asked, false);
            }
        }
    }

    #[test]
    fn a_listing_that_fits_takes_as_many_calls_as_before() {
        let (asked, done) = simulate(EC2_PAGES, 1000, |_, _| true);
        assert!(done);
        assert_eq!(asked, [1000]);
        let (asked, _) = simulate(EC2_PAGES, 2500, |_, _| true);
        assert_eq!(asked, [1000, 1000, 1000]);
        let (asked, _) = simulate(RDS_PAGES, 100, |_, _| true);
        assert_eq!(asked, [100]);
    }

    #[test]
    fn pages_too_large_shrink_then_grow_towards_what_fits() {
        // Anything over 300 items times out.
        let (asked, done) = simulate(EC2_PAGES, 3000, |_, n| n <= 300);
        assert!(done, "{asked:?}");
        assert_eq!(&asked[..3], [1000, 500, 250], "{asked:?}");
        // After the first success it probes halfway back towards 500, then settles
        // under 300 without ever asking for 500 or more again.
        assert!(asked[3..].iter().all(|s| *s < 500), "{asked:?}");
        let timeouts = asked.iter().filter(|s| **s > 300).count();
        assert!(timeouts <= 5, "{timeouts} timeouts: {asked:?}");
        let settled = asked[asked.len() - 2];
        assert!(settled > 250 && settled <= 300, "{asked:?}");
    }

    #[test]
    fn only_a_page_of_the_floors_size_that_times_out_fails_the_listing() {
        let (asked, done) = simulate(EC2_PAGES, 5000, |_, n| n <= 50);
        assert!(done, "{asked:?}");
        assert_eq!(&asked[..6], [1000, 500, 250, 125, 62, 50]);
        let (asked, done) = simulate(EC2_PAGES, 5000, |_, _| false);
        assert!(!done);
        assert_eq!(asked, [1000, 500, 250, 125, 62, 50]);
        let (asked, done) = simulate(RDS_PAGES, 500, |_, _| false);
        assert!(!done);
        assert_eq!(asked, [100, 50, 25, 20]);
    }

    #[test]
    fn a_momentary_stall_costs_little_of_the_page_size() {
        // The second call stalls whatever its size; everything else fits.
        // Half size once, then back most of the way: 875, where another step (to 937)
        // would be under an eighth.
        let (asked, done) = simulate(EC2_PAGES, 5000, |call, _| call != 2);
        assert!(done);
        assert_eq!(&asked[..6], [1000, 1000, 500, 750, 875, 875], "{asked:?}");
        let (asked, _) = simulate(EC2_PAGES, 5000, |call, _| call != 1);
        assert_eq!(&asked[..5], [1000, 500, 750, 875, 875], "{asked:?}");
    }

    #[test]
    fn a_size_that_stops_fitting_is_given_up() {
        // Pages of up to 400 fit for the first five calls, then only up to 100.
        let (asked, done) = simulate(EC2_PAGES, 4000, |call, n| {
            n <= if call <= 5 { 400 } else { 100 }
        });
        assert!(done, "{asked:?}");
        let late = &asked[8..];
        assert!(late.iter().rev().take(3).all(|s| *s <= 100), "{asked:?}");
    }
}
