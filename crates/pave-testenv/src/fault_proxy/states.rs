//! Slow states: the intermediate states AWS reports for minutes and moto skips.
//!
//! moto makes an EC2 instance `running` at once and a terminated one `terminated` at
//! once; its RDS instances are `available` the moment CreateDBInstance answers, a
//! ModifyDBInstance is applied at once, and DeleteDBInstance forgets the instance
//! at once. So against plain moto every waiting path of pave's driver (an instance
//! still `pending`, a database still `creating`, a delete that must be asked about
//! again) is dead code. A [`SlowState`] makes the proxy report the state AWS would,
//! for a set time after the call that starts it, by rewriting moto's answers.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::form;
use super::xml::{self, Edits, Element};

mod ec2;
mod rds;

use ec2::{StateFilters, instances, run_instances_name};
use rds::{db_records, deleting_record};

/// A state change AWS takes time over; see [`SlowState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// After CreateDBInstance: `creating`, and no `Endpoint` yet (RDS assigns the
    /// address when the instance becomes available).
    DbCreating,
    /// After ModifyDBInstance: `modifying`. moto has already applied the change, so
    /// the record shows the new class and storage (pave reads pending values and
    /// current ones alike).
    DbModifying,
    /// After DeleteDBInstance: the instance is still described, by identifier and in
    /// listings, as `deleting`, although moto has forgotten it.
    DbDeleting,
    /// After RunInstances: the new instances are `pending` (code 0).
    InstancePending,
    /// After TerminateInstances: `shutting-down` (code 32) instead of `terminated`,
    /// and still listed by describes that filter on `instance-state-name`.
    InstanceShuttingDown,
}

impl Transition {
    /// The state the proxy reports during the window.
    pub fn state(self) -> &'static str {
        match self {
            Transition::DbCreating => "creating",
            Transition::DbModifying => "modifying",
            Transition::DbDeleting => "deleting",
            Transition::InstancePending => "pending",
            Transition::InstanceShuttingDown => "shutting-down",
        }
    }

    fn is_db(self) -> bool {
        matches!(
            self,
            Transition::DbCreating | Transition::DbModifying | Transition::DbDeleting
        )
    }
}

/// Reports `transition`'s state for `duration` after the call that starts it, for
/// every resource or, with [`SlowState::only`], for one. The window opens when moto
/// has accepted the call (a 2xx answer), faults or not: if moto acted, the state is
/// real.
///
/// | transition | starts when moto accepts | describes report, for the window |
/// |---|---|---|
/// | [`Transition::DbCreating`] | CreateDBInstance of X | X `creating`, without `Endpoint` |
/// | [`Transition::DbModifying`] | ModifyDBInstance of X | X `modifying` |
/// | [`Transition::DbDeleting`] | DeleteDBInstance of X | X still listed, `deleting` |
/// | [`Transition::InstancePending`] | RunInstances | its instances `pending` (code 0) |
/// | [`Transition::InstanceShuttingDown`] | TerminateInstances | its instances `shutting-down` (code 32) |
///
/// After the window, moto's own answers pass again. While a window is open, calls
/// AWS refuses in that state are refused the way AWS does, without asking moto, so
/// the caller cannot tell the proxy's state from a real one:
/// - DeleteDBInstance of a DB `deleting`: 400 `InvalidDBInstanceState` ("already
///   being deleted"), not moto's `DBInstanceNotFound`, which pave reads as gone;
/// - CreateDBInstance of a DB `deleting`: 400 `DBInstanceAlreadyExists`;
/// - ModifyDBInstance of a DB `creating`, `modifying` or `deleting`: 400
///   `InvalidDBInstanceState` ("not in available state").
///
/// A repeated TerminateInstances during `shutting-down` is passed to moto (which
/// accepts it, as AWS does) and the window keeps its end. With no slow states set,
/// slow states rewrite nothing: answers pass byte for byte (listings are only read,
/// to count their entries, unless [`super::FaultProxy::set_aws_paging`] cuts them).
///
/// What is rewritten: DescribeDBInstances (by identifier or ARN, and listings, where a
/// `deleting` record moto forgot is appended to the last page, i.e. an answer without
/// `Marker`, if the request's `db-instance-id`, `engine`, `dbi-resource-id` or
/// `db-cluster-id` filters admit it; other filters admit nothing), the answers of
/// CreateDBInstance and DeleteDBInstance themselves, DescribeInstances (by id and
/// filtered: an `instance-state-name` or `instance-state-code` filter is widened
/// towards moto and applied again to the reported states) and RunInstances' answer.
/// Not rewritten, because pave does not use them: ModifyDBInstance's answer (RDS too
/// answers it with the old status), DescribeInstanceStatus, ListTagsForResource of a
/// `deleting` DB. A listing page may hold one record more than `MaxRecords` asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowState {
    transition: Transition,
    duration: Duration,
    only: Option<String>,
}

impl SlowState {
    pub fn new(transition: Transition, duration: Duration) -> SlowState {
        SlowState {
            transition,
            duration,
            only: None,
        }
    }

    /// Restricts this slow state to one resource: a DB instance identifier (compared
    /// without case, as RDS does), an EC2 instance id, or an EC2 instance's `Name`
    /// tag as RunInstances set it (pave sets it to the deterministic name), because
    /// an instance's id is not known before it is launched.
    pub fn only(mut self, resource: impl Into<String>) -> SlowState {
        self.only = Some(resource.into());
        self
    }

    fn picks(&self, transition: Transition, id: &str, name: Option<&str>) -> bool {
        self.transition == transition
            && match &self.only {
                None => true,
                Some(only) if transition.is_db() => only.eq_ignore_ascii_case(id),
                Some(only) => only == id || name == Some(only.as_str()),
            }
    }
}

/// A record an answer showed in a state of the proxy's making (or a call the proxy
/// refused because of such a state): in [`super::Seen::reported`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// The DB instance identifier or the EC2 instance id.
    pub resource: String,
    /// `creating`, `deleting`, `pending`, …
    pub state: String,
}

/// A resource in a reported state until `until`.
#[derive(Debug)]
struct Window {
    transition: Transition,
    /// DB identifier (lower case) or instance id.
    resource: String,
    until: Instant,
    /// For `deleting`: the `<DBInstance>` element to list, already `deleting`.
    record: Option<String>,
    /// For `deleting`: the instance's ARN, which DescribeDBInstances also accepts.
    arn: Option<String>,
}

impl Window {
    fn open_at(&self, view: Instant) -> bool {
        view < self.until
    }
}

/// What the proxy knows about slow states: the rules, the open windows, and what it
/// remembers from earlier answers to build later ones.
#[derive(Debug, Default)]
pub(super) struct Slow {
    rules: Vec<SlowState>,
    windows: Vec<Window>,
    /// The last `<DBInstance>` moto showed, by lower-case identifier, kept while a
    /// [`Transition::DbDeleting`] rule is set: the `deleting` record once moto has
    /// forgotten the instance (with its TagList, which pave's inventory reads).
    db_records: HashMap<String, String>,
    /// `Name` tags of instances, by id, for [`SlowState::only`].
    instance_names: HashMap<String, String>,
    /// Instances a pending window was opened for: RunInstances answering an old
    /// client token with the same instance is not a new launch.
    launched: HashSet<String>,
}

/// What to do with a request, decided before moto sees it.
#[derive(Debug)]
pub(super) enum Before {
    /// Answer this AWS error (400) without asking moto.
    Refuse {
        code: &'static str,
        message: String,
        reported: Vec<Reported>,
    },
    /// Forward, with these parameters added (to see records moto would filter out).
    Forward(Prepared),
}

/// What [`Slow::after`] needs from [`Slow::before`].
#[derive(Debug)]
pub(super) struct Prepared {
    /// The moment the answer describes: windows open then are applied.
    view: Instant,
    /// Parameters to add to the request, already encoded (`Filter.3.Value.2=running`).
    pub extra_params: Vec<String>,
    /// The instance-state filters the caller asked for, when the proxy widened them.
    state_filters: Option<StateFilters>,
}

/// A rewritten answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Rewritten {
    pub status: u16,
    pub body: String,
}

impl Slow {
    /// New rules; windows already open close, and what was remembered is forgotten.
    pub fn set(&mut self, rules: Vec<SlowState>) {
        *self = Slow {
            rules,
            ..Slow::default()
        };
    }

    fn active(&self) -> bool {
        !self.rules.is_empty()
    }

    fn has_rule(&self, transition: Transition) -> bool {
        self.rules.iter().any(|r| r.transition == transition)
    }

    fn window(&self, view: Instant, resource: &str, db: bool) -> Option<&Window> {
        self.windows.iter().find(|w| {
            w.open_at(view)
                && w.transition.is_db() == db
                && if db {
                    w.resource.eq_ignore_ascii_case(resource) || w.arn.as_deref() == Some(resource)
                } else {
                    w.resource == resource
                }
        })
    }

    fn db_window(&self, view: Instant, identifier: &str) -> Option<&Window> {
        self.window(view, identifier, true)
    }

    fn close(&mut self, resource: &str, db: bool) {
        self.windows.retain(|w| {
            w.transition.is_db() != db
                || !if db {
                    w.resource.eq_ignore_ascii_case(resource)
                } else {
                    w.resource == resource
                }
        });
    }

    /// Opens `transition`'s window for `resource` if a rule picks it.
    fn open(
        &mut self,
        answered: Instant,
        transition: Transition,
        resource: &str,
        name: Option<&str>,
        record: Option<String>,
        arn: Option<String>,
    ) {
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.picks(transition, resource, name))
        else {
            return;
        };
        if rule.duration.is_zero() {
            return;
        }
        let until = answered + rule.duration;
        self.close(resource, transition.is_db());
        self.windows.push(Window {
            transition,
            resource: if transition.is_db() {
                resource.to_ascii_lowercase()
            } else {
                resource.to_owned()
            },
            until,
            record,
            arn,
        });
    }

    /// Called with every request before it is forwarded (and before any fault that
    /// forwards is applied): refuses what AWS would refuse in a state the proxy
    /// shows, and widens instance-state filters so moto returns the records whose
    /// state the proxy rewrites.
    pub fn before(&mut self, view: Instant, action: &str, params: &[(String, String)]) -> Before {
        let mut prepared = Prepared {
            view,
            extra_params: Vec::new(),
            state_filters: None,
        };
        if !self.active() {
            return Before::Forward(prepared);
        }
        self.windows.retain(|w| w.open_at(view));
        let identifier = form::get(params, "DBInstanceIdentifier").unwrap_or_default();
        let refusal = |window: &Window, code, message: String| Before::Refuse {
            code,
            message,
            reported: vec![Reported {
                resource: window.resource.clone(),
                state: window.transition.state().to_owned(),
            }],
        };
        match (action, self.db_window(view, identifier)) {
            ("DeleteDBInstance", Some(w)) if w.transition == Transition::DbDeleting => {
                return refusal(
                    w,
                    "InvalidDBInstanceState",
                    format!("Instance {} is already being deleted.", w.resource),
                );
            }
            ("CreateDBInstance", Some(w)) if w.transition == Transition::DbDeleting => {
                return refusal(
                    w,
                    "DBInstanceAlreadyExists",
                    "DB instance already exists".to_owned(),
                );
            }
            ("ModifyDBInstance", Some(w)) => {
                return refusal(
                    w,
                    "InvalidDBInstanceState",
                    "Database instance is not in available state.".to_owned(),
                );
            }
            _ => {}
        }
        if action == "DescribeInstances" {
            prepared.extra_params = self.widen_state_filters(view, params);
            prepared.state_filters = Some(StateFilters::of(params));
        }
        Before::Forward(prepared)
    }

    /// Called with moto's answer: opens the windows a successful call starts and
    /// rewrites the answer to show the states of open windows. `None` leaves moto's
    /// answer as it is.
    pub fn after(
        &mut self,
        answered: Instant,
        action: &str,
        params: &[(String, String)],
        prepared: &Prepared,
        status: u16,
        body: &[u8],
    ) -> (Option<Rewritten>, Vec<Reported>) {
        let mut reported = Vec::new();
        if !self.active() {
            return (None, reported);
        }
        let Ok(doc) = std::str::from_utf8(body) else {
            return (None, reported);
        };
        let root = xml::parse(doc);
        let ok = (200..300).contains(&status);
        if ok {
            // Windows first: DeleteDBInstance's window takes the record remembered from
            // before the delete, which remember() then forgets.
            self.start_windows(answered, action, params, doc, root.as_ref());
            if let Some(root) = &root {
                self.remember(doc, root, action, params);
            }
        }
        let Some(root) = root else {
            return (None, reported);
        };
        let view = prepared.view;
        let mut edits = Edits::default();
        match action {
            "DescribeDBInstances" if !ok => {
                return (
                    self.deleting_answer(view, params, doc, &root, &mut reported),
                    reported,
                );
            }
            "DescribeDBInstances" => {
                self.rewrite_db_listing(view, params, doc, &root, &mut edits, &mut reported)
            }
            "CreateDBInstance" | "DeleteDBInstance" if ok => {
                for record in db_records(&root, action) {
                    self.rewrite_db_record(view, doc, record, &mut edits, &mut reported);
                }
            }
            "DescribeInstances" if ok => self.rewrite_instances(
                view,
                doc,
                &root,
                prepared.state_filters.as_ref(),
                &mut edits,
                &mut reported,
            ),
            "RunInstances" if ok => {
                self.rewrite_instances(view, doc, &root, None, &mut edits, &mut reported)
            }
            _ => {}
        }
        if edits.is_empty() {
            return (None, reported);
        }
        (
            Some(Rewritten {
                status,
                body: edits.apply(doc),
            }),
            reported,
        )
    }

    /// Keeps what later answers need: DB records for `deleting`, instance names for
    /// [`SlowState::only`].
    fn remember(&mut self, doc: &str, root: &Element, action: &str, params: &[(String, String)]) {
        if action == "DeleteDBInstance" {
            let identifier = form::get(params, "DBInstanceIdentifier").unwrap_or_default();
            self.db_records.remove(&identifier.to_ascii_lowercase());
        } else if self.has_rule(Transition::DbDeleting) {
            for record in db_records(root, action) {
                if let Some(id) = record.child_text(doc, "DBInstanceIdentifier") {
                    self.db_records
                        .insert(id.to_ascii_lowercase(), doc[record.span.clone()].to_owned());
                }
            }
        }
        let names_matter = self
            .rules
            .iter()
            .any(|r| !r.transition.is_db() && r.only.is_some());
        if !names_matter {
            return;
        }
        let launched_name = (action == "RunInstances")
            .then(|| run_instances_name(params))
            .flatten();
        for instance in instances(root) {
            let Some(id) = instance.child_text(doc, "instanceId") else {
                continue;
            };
            let name = instance
                .child("tagSet")
                .into_iter()
                .flat_map(|set| set.children_named("item"))
                .find(|tag| tag.child_text(doc, "key").as_deref() == Some("Name"))
                .and_then(|tag| tag.child_text(doc, "value"))
                .or_else(|| launched_name.clone());
            if let Some(name) = name {
                self.instance_names.insert(id, name);
            }
        }
    }

    fn start_windows(
        &mut self,
        answered: Instant,
        action: &str,
        params: &[(String, String)],
        doc: &str,
        root: Option<&Element>,
    ) {
        let identifier = form::get(params, "DBInstanceIdentifier").unwrap_or_default();
        match action {
            "CreateDBInstance" => self.open(
                answered,
                Transition::DbCreating,
                identifier,
                None,
                None,
                None,
            ),
            "ModifyDBInstance" => self.open(
                answered,
                Transition::DbModifying,
                identifier,
                None,
                None,
                None,
            ),
            "DeleteDBInstance" => {
                self.close(identifier, true);
                let answered_record = root
                    .into_iter()
                    .flat_map(|root| db_records(root, action))
                    .next()
                    .map(|r| doc[r.span.clone()].to_owned());
                let record = deleting_record(
                    identifier,
                    answered_record,
                    self.db_records.get(&identifier.to_ascii_lowercase()),
                );
                let arn = xml::parse(&record)
                    .and_then(|r| r.child_text(&record, "DBInstanceArn"))
                    .filter(|arn| !arn.is_empty());
                self.open(
                    answered,
                    Transition::DbDeleting,
                    identifier,
                    None,
                    Some(record),
                    arn,
                );
            }
            "RunInstances" => {
                let Some(root) = root else { return };
                let name = run_instances_name(params);
                let fresh: Vec<String> = instances(root)
                    .filter(|i| {
                        matches!(
                            i.at(&["instanceState", "name"])
                                .map(|n| n.text(doc))
                                .as_deref(),
                            Some("pending" | "running")
                        )
                    })
                    .filter_map(|i| i.child_text(doc, "instanceId"))
                    .filter(|id| !self.launched.contains(id))
                    .collect();
                for id in fresh {
                    self.launched.insert(id.clone());
                    let name = name
                        .clone()
                        .or_else(|| self.instance_names.get(&id).cloned());
                    self.open(
                        answered,
                        Transition::InstancePending,
                        &id,
                        name.as_deref(),
                        None,
                        None,
                    );
                }
            }
            "TerminateInstances" => {
                let previous: HashMap<String, String> = root
                    .into_iter()
                    .flat_map(|root| root.child("instancesSet"))
                    .flat_map(|set| set.children_named("item"))
                    .filter_map(|item| {
                        Some((
                            item.child_text(doc, "instanceId")?,
                            item.at(&["previousState", "name"])?.text(doc),
                        ))
                    })
                    .collect();
                for id in form::list(params, "InstanceId") {
                    let shutting_down = self.windows.iter().any(|w| {
                        w.transition == Transition::InstanceShuttingDown
                            && w.resource == id
                            && w.open_at(answered)
                    });
                    // Already on its way out in the proxy's eyes: the window keeps its
                    // end. Already terminated in moto's (and not shown otherwise): AWS
                    // answers terminated → terminated, and nothing is slow.
                    if shutting_down || previous.get(id).map(String::as_str) == Some("terminated") {
                        continue;
                    }
                    let name = self.instance_names.get(id).cloned();
                    self.close(id, false);
                    self.open(
                        answered,
                        Transition::InstanceShuttingDown,
                        id,
                        name.as_deref(),
                        None,
                        None,
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
