//! The rewriting, on answers captured from moto 5.2.5 (testdata/), without a network:
//! each test says exactly which bytes change, so anything else changing fails it.

use super::*;

const CREATE: &str = include_str!("../testdata/moto-create.xml");
/// DescribeDBInstances listing pave-x-db, then pave-y-db (which has no tags).
const LISTING: &str = include_str!("../testdata/moto-list2.xml");
const DELETE: &str = include_str!("../testdata/moto-delete.xml");
const NOT_FOUND: &str = include_str!("../testdata/moto-notfound.xml");
/// RunInstances of i-de643147c18c97b89, tagged Name=pave-x-vm-0.
const RUN: &str = include_str!("../testdata/moto-run.xml");
/// DescribeInstances: i-de643147c18c97b89 `terminated`, then i-28198ffa22eb985a9
/// `running`, each in its own reservation.
const INSTANCES: &str = include_str!("../testdata/moto-desc2.xml");
const TERMINATE: &str = include_str!("../testdata/moto-term.xml");

const X: &str = "pave-x-db";
const VM: &str = "i-de643147c18c97b89";
const OTHER_VM: &str = "i-28198ffa22eb985a9";
const ENDPOINT: &str = "<Endpoint><Address>pave-x-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com</Address><Port>5432</Port></Endpoint>";

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn reported(resource: &str, state: &str) -> Reported {
    Reported {
        resource: resource.to_owned(),
        state: state.to_owned(),
    }
}

/// A proxy's slow-state half, driven by hand through one call: `before`, then
/// `after` with moto's answer, at `at`.
struct Harness {
    slow: Slow,
    t0: Instant,
}

impl Harness {
    fn new(rules: Vec<SlowState>) -> Harness {
        let mut slow = Slow::default();
        slow.set(rules);
        Harness {
            slow,
            t0: Instant::now(),
        }
    }

    fn at(&self, seconds: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(seconds)
    }

    fn before(&mut self, seconds: f64, action: &str, params: &[(String, String)]) -> Before {
        let at = self.at(seconds);
        self.slow.before(at, action, params)
    }

    /// `(status, body, reported)` as the client would get them.
    fn call(
        &mut self,
        seconds: f64,
        action: &str,
        params: &[(String, String)],
        status: u16,
        answer: &str,
    ) -> (u16, String, Vec<Reported>) {
        let Before::Forward(prepared) = self.before(seconds, action, params) else {
            panic!("{action} was refused");
        };
        let at = self.at(seconds);
        let (rewritten, reported) =
            self.slow
                .after(at, action, params, &prepared, status, answer.as_bytes());
        match rewritten {
            Some(r) => (r.status, r.body, reported),
            None => (status, answer.to_owned(), reported),
        }
    }
}

fn create_x() -> Vec<(String, String)> {
    params(&[("Action", "CreateDBInstance"), ("DBInstanceIdentifier", X)])
}

/// The listing's first record (pave-x-db) and the rest, split at the second record.
fn split_listing() -> (&'static str, &'static str, &'static str) {
    let first = LISTING.find("<DBInstance>").unwrap();
    let second = first + 1 + LISTING[first + 1..].find("<DBInstance>").unwrap();
    (
        &LISTING[..first],
        &LISTING[first..second],
        &LISTING[second..],
    )
}

#[test]
fn without_slow_states_nothing_is_parsed_or_changed() {
    let mut h = Harness::new(Vec::new());
    for (action, answer) in [
        ("CreateDBInstance", CREATE),
        ("DescribeDBInstances", LISTING),
        ("RunInstances", RUN),
        ("DescribeInstances", INSTANCES),
    ] {
        let (status, body, reported) = h.call(0.0, action, &create_x(), 200, answer);
        assert_eq!((status, body.as_str()), (200, answer));
        assert_eq!(reported, []);
    }
    assert!(h.slow.windows.is_empty());
}

#[test]
fn a_created_database_is_creating_without_endpoint_for_the_window() {
    let mut h = Harness::new(vec![SlowState::new(
        Transition::DbCreating,
        Duration::from_secs(5),
    )]);
    let (status, body, seen) = h.call(0.0, "CreateDBInstance", &create_x(), 200, CREATE);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        CREATE
            .replace(
                "<DBInstanceStatus>available</DBInstanceStatus>",
                "<DBInstanceStatus>creating</DBInstanceStatus>"
            )
            .replace(ENDPOINT, "")
    );
    assert_eq!(seen, [reported(X, "creating")]);

    // In a listing, only pave-x-db's record changes; pave-y-db's bytes are moto's.
    let listing = params(&[("Action", "DescribeDBInstances")]);
    let (_, body, seen) = h.call(4.9, "DescribeDBInstances", &listing, 200, LISTING);
    let (head, x, rest) = split_listing();
    let x_creating = x
        .replace(
            "<DBInstanceStatus>available</DBInstanceStatus>",
            "<DBInstanceStatus>creating</DBInstanceStatus>",
        )
        .replace(ENDPOINT, "");
    assert_ne!(x_creating, x);
    assert_eq!(body, format!("{head}{x_creating}{rest}"));
    assert!(body.ends_with(rest) && rest.contains("pave-y-db"));
    assert_eq!(seen, [reported(X, "creating")]);

    // Modifying is refused while creating, as RDS does.
    let modify = params(&[("Action", "ModifyDBInstance"), ("DBInstanceIdentifier", X)]);
    let Before::Refuse { code, .. } = h.before(2.0, "ModifyDBInstance", &modify) else {
        panic!("ModifyDBInstance during creating was forwarded");
    };
    assert_eq!(code, "InvalidDBInstanceState");

    // After the window: moto's answer, untouched; and modifying is allowed.
    let (_, body, seen) = h.call(5.0, "DescribeDBInstances", &listing, 200, LISTING);
    assert_eq!((body.as_str(), seen), (LISTING, vec![]));
    assert!(matches!(
        h.before(5.0, "ModifyDBInstance", &modify),
        Before::Forward(_)
    ));
}

#[test]
fn only_picks_one_database_and_identifiers_ignore_case() {
    let mut h = Harness::new(vec![
        SlowState::new(Transition::DbCreating, Duration::from_secs(5)).only("PAVE-Y-DB"),
    ]);
    let (_, body, _) = h.call(0.0, "CreateDBInstance", &create_x(), 200, CREATE);
    assert_eq!(body, CREATE, "pave-x-db is not the one slowed");
    let create_y = params(&[("DBInstanceIdentifier", "pave-y-db")]);
    h.call(0.0, "CreateDBInstance", &create_y, 200, "<not parsed/>");
    let (_, body, seen) = h.call(
        1.0,
        "DescribeDBInstances",
        &params(&[("DBInstanceIdentifier", "pave-y-db")]),
        200,
        LISTING,
    );
    let (head, x, rest) = split_listing();
    assert_eq!(
        body,
        format!(
            "{head}{x}{}",
            rest.replacen(
                "<DBInstanceStatus>available</DBInstanceStatus>",
                "<DBInstanceStatus>creating</DBInstanceStatus>",
                1
            )
            .replace(
                "<Endpoint><Address>pave-y-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com</Address><Port>5432</Port></Endpoint>",
                ""
            )
        )
    );
    assert_eq!(seen, [reported("pave-y-db", "creating")]);
}

#[test]
fn a_failed_create_starts_nothing() {
    let mut h = Harness::new(vec![SlowState::new(
        Transition::DbCreating,
        Duration::from_secs(5),
    )]);
    h.call(0.0, "CreateDBInstance", &create_x(), 400, NOT_FOUND);
    assert!(h.slow.windows.is_empty());
}

#[test]
fn a_deleted_database_stays_listed_deleting_and_refuses_what_rds_refuses() {
    let mut h = Harness::new(vec![SlowState::new(
        Transition::DbDeleting,
        Duration::from_secs(5),
    )]);
    let listing = params(&[("Action", "DescribeDBInstances")]);
    // Seen before the delete, as pave's look-first delete does.
    h.call(0.0, "DescribeDBInstances", &listing, 200, LISTING);
    let delete = params(&[("Action", "DeleteDBInstance"), ("DBInstanceIdentifier", X)]);
    let (status, body, seen) = h.call(1.0, "DeleteDBInstance", &delete, 200, DELETE);
    // moto already answers `deleting` here; the answer is unchanged.
    assert_eq!((status, body.as_str()), (200, DELETE));
    assert_eq!(seen, [reported(X, "deleting")]);

    // The record as DeleteDBInstance answered it (the new class, the tags).
    let start = DELETE.find("<DBInstance>").unwrap();
    let end = DELETE.find("</DBInstance>").unwrap() + "</DBInstance>".len();
    let record = &DELETE[start..end];
    assert!(record.contains("<DBInstanceStatus>deleting</DBInstanceStatus>"));
    assert!(record.contains("<TagList><Tag><Key>pave.dev/cluster-id</Key>"));

    // By identifier: RDS's 200 with the record, where moto says DBInstanceNotFound.
    let targeted = params(&[("DBInstanceIdentifier", X)]);
    let (status, body, seen) = h.call(2.0, "DescribeDBInstances", &targeted, 404, NOT_FOUND);
    assert_eq!(status, 200);
    let request_id = "fxGrnkURN4QD8AomxwTpn433jpPKdsQVEJttzJIubBEGopFNldXk";
    assert!(NOT_FOUND.contains(request_id));
    assert_eq!(
        body,
        format!(
            "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
             <DescribeDBInstancesResult><DBInstances>{record}</DBInstances></DescribeDBInstancesResult>\
             <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\
             </DescribeDBInstancesResponse>"
        )
    );
    assert_eq!(seen, [reported(X, "deleting")]);
    // By ARN too.
    let by_arn = params(&[(
        "DBInstanceIdentifier",
        "arn:aws:rds:us-east-1:123456789012:db:pave-x-db",
    )]);
    assert_eq!(
        h.call(2.0, "DescribeDBInstances", &by_arn, 404, NOT_FOUND)
            .0,
        200
    );
    // Another DB's "not found" is moto's.
    let other = params(&[("DBInstanceIdentifier", "pave-z-db")]);
    assert_eq!(
        h.call(2.0, "DescribeDBInstances", &other, 404, NOT_FOUND),
        (404, NOT_FOUND.to_owned(), vec![])
    );

    // In a listing moto answers without it: appended after what moto listed.
    let (head, _, rest) = split_listing();
    let without_x = format!("{head}{rest}");
    let (_, body, seen) = h.call(3.0, "DescribeDBInstances", &listing, 200, &without_x);
    let close = without_x.find("</DBInstances>").unwrap();
    assert_eq!(
        body,
        format!("{}{record}{}", &without_x[..close], &without_x[close..])
    );
    assert_eq!(seen, [reported(X, "deleting")]);
    // An empty listing gets a list.
    let empty = LISTING[..LISTING.find("<DBInstances>").unwrap()].to_owned()
        + "<DBInstances/>"
        + &LISTING[LISTING.find("</DBInstances>").unwrap() + "</DBInstances>".len()..];
    let (_, body, _) = h.call(3.0, "DescribeDBInstances", &listing, 200, &empty);
    assert_eq!(
        body,
        empty.replace(
            "<DBInstances/>",
            &format!("<DBInstances>{record}</DBInstances>")
        )
    );
    // Filters are honoured: by id or engine it is listed, by another engine, by an
    // unknown filter or on a page that is not the last it is not.
    for (filter, value, listed) in [
        ("db-instance-id", X, true),
        ("db-instance-id", "pave-y-db", false),
        ("engine", "postgres", true),
        ("engine", "mysql", false),
        ("domain", "anything", false),
    ] {
        let filtered = params(&[
            ("Filters.Filter.1.Name", filter),
            ("Filters.Filter.1.Values.Value.1", value),
        ]);
        let (_, body, _) = h.call(3.0, "DescribeDBInstances", &filtered, 200, &without_x);
        assert_eq!(body.contains(record), listed, "{filter}={value}");
    }
    let paged = without_x.replace("</DBInstances>", "</DBInstances><Marker>pave-y-db</Marker>");
    assert_eq!(
        h.call(3.0, "DescribeDBInstances", &listing, 200, &paged).1,
        paged
    );

    // Deleting again, creating again, modifying: refused as RDS refuses them.
    for (action, expected) in [
        ("DeleteDBInstance", "InvalidDBInstanceState"),
        ("CreateDBInstance", "DBInstanceAlreadyExists"),
        ("ModifyDBInstance", "InvalidDBInstanceState"),
    ] {
        match h.before(4.9, action, &delete) {
            Before::Refuse {
                code,
                message,
                reported: seen,
            } => {
                assert_eq!(code, expected, "{action}");
                assert_eq!(seen, [reported(X, "deleting")]);
                if action == "DeleteDBInstance" {
                    assert_eq!(message, "Instance pave-x-db is already being deleted.");
                }
            }
            Before::Forward(_) => panic!("{action} during deleting was forwarded"),
        }
    }

    // After the window: moto's truth, gone.
    assert_eq!(
        h.call(6.0, "DescribeDBInstances", &targeted, 404, NOT_FOUND),
        (404, NOT_FOUND.to_owned(), vec![])
    );
    assert!(matches!(
        h.before(6.0, "DeleteDBInstance", &delete),
        Before::Forward(_)
    ));
}

#[test]
fn a_deleting_record_takes_remembered_tags_when_the_delete_answer_has_none() {
    let mut h = Harness::new(vec![SlowState::new(
        Transition::DbDeleting,
        Duration::from_secs(5),
    )]);
    h.call(0.0, "CreateDBInstance", &create_x(), 200, CREATE);
    let untagged = DELETE.replace(
        "<TagList><Tag><Key>pave.dev/cluster-id</Key><Value>c1</Value></Tag></TagList>",
        "<TagList/>",
    );
    assert_ne!(untagged, DELETE);
    let delete = params(&[("DBInstanceIdentifier", X)]);
    h.call(1.0, "DeleteDBInstance", &delete, 200, &untagged);
    let record = h.slow.windows[0].record.clone().unwrap();
    assert!(
        record.contains(
            "<TagList><Tag><Key>pave.dev/cluster-id</Key><Value>c1</Value></Tag></TagList>"
        ),
        "{record}"
    );
    assert!(record.contains("<DBInstanceClass>db.t3.small</DBInstanceClass>"));
    assert!(!record.contains("<TagList/>"));
}

#[test]
fn a_new_instance_is_pending_and_leaves_listings_that_want_it_running() {
    let mut h = Harness::new(vec![
        SlowState::new(Transition::InstancePending, Duration::from_secs(5)).only("pave-x-vm-0"),
    ]);
    let run = params(&[
        ("TagSpecification.1.ResourceType", "instance"),
        ("TagSpecification.1.Tag.1.Key", "Name"),
        ("TagSpecification.1.Tag.1.Value", "pave-x-vm-0"),
    ]);
    let (_, body, seen) = h.call(0.0, "RunInstances", &run, 200, RUN);
    // moto's RunInstances answer already says pending.
    assert_eq!(body, RUN);
    assert_eq!(seen, [reported(VM, "pending")]);

    let running = INSTANCES.replacen(
        "<code>48</code><name>terminated</name>",
        "<code>16</code><name>running</name>",
        1,
    );
    assert_ne!(running, INSTANCES);
    let live = params(&[
        ("Filter.1.Name", "instance-state-name"),
        ("Filter.1.Value.1", "pending"),
        ("Filter.1.Value.2", "running"),
    ]);
    let (_, body, seen) = h.call(1.0, "DescribeInstances", &live, 200, &running);
    assert_eq!(
        body,
        running.replacen(
            "<code>16</code><name>running</name>",
            "<code>0</code><name>pending</name>",
            1
        )
    );
    assert_eq!(seen, [reported(VM, "pending")]);
    // A filter for running only: the pending instance, alone in its reservation,
    // is left out with it; the other is untouched.
    let only_running = params(&[
        ("Filter.1.Name", "instance-state-name"),
        ("Filter.1.Value.1", "running"),
    ]);
    let (_, body, _) = h.call(1.0, "DescribeInstances", &only_running, 200, &running);
    let first = running.find("<item><reservationId>").unwrap();
    let second = first + 1 + running[first + 1..].find("<item><reservationId>").unwrap();
    assert_eq!(body, format!("{}{}", &running[..first], &running[second..]));
    assert!(body.contains(OTHER_VM) && !body.contains(VM));
    // The same client token answered again later is not a new launch.
    let (_, body, seen) = h.call(6.0, "RunInstances", &run, 200, &running_run());
    assert_eq!((body, seen), (running_run(), vec![]));
}

/// RunInstances answering with an instance that is already running.
fn running_run() -> String {
    RUN.replace(
        "<code>0</code><name>pending</name>",
        "<code>16</code><name>running</name>",
    )
}

#[test]
fn a_terminated_instance_is_shutting_down_and_still_found_by_state_filters() {
    let mut h = Harness::new(vec![SlowState::new(
        Transition::InstanceShuttingDown,
        Duration::from_secs(5),
    )]);
    let terminate = params(&[("Action", "TerminateInstances"), ("InstanceId.1", VM)]);
    let (_, body, _) = h.call(0.0, "TerminateInstances", &terminate, 200, TERMINATE);
    assert_eq!(body, TERMINATE);

    // pave's look-up filters on the live states; moto has the instance terminated, so
    // the proxy asks for that too and shows it shutting-down.
    let live = params(&[
        ("Filter.1.Name", "tag:pave.dev/name"),
        ("Filter.1.Value.1", "pave-x-vm-0"),
        ("Filter.2.Name", "instance-state-name"),
        ("Filter.2.Value.1", "pending"),
        ("Filter.2.Value.2", "running"),
        ("Filter.2.Value.3", "shutting-down"),
        ("Filter.2.Value.4", "stopping"),
        ("Filter.2.Value.5", "stopped"),
    ]);
    let Before::Forward(prepared) = h.before(1.0, "DescribeInstances", &live) else {
        panic!("refused");
    };
    assert_eq!(prepared.extra_params, ["Filter.2.Value.6=terminated"]);
    let (_, body, seen) = h.call(1.0, "DescribeInstances", &live, 200, INSTANCES);
    assert_eq!(
        body,
        INSTANCES.replacen(
            "<code>48</code><name>terminated</name>",
            "<code>32</code><name>shutting-down</name>",
            1
        )
    );
    assert_eq!(seen, [reported(VM, "shutting-down")]);
    // Other terminated instances moto returns for the widened filter stay out.
    let both_dead = INSTANCES.replace(
        "<code>16</code><name>running</name>",
        "<code>48</code><name>terminated</name>",
    );
    let (_, body, _) = h.call(1.0, "DescribeInstances", &live, 200, &both_dead);
    assert!(body.contains(VM) && !body.contains(OTHER_VM), "{body}");
    // A caller that asked for terminated ones does not get it: it is not, yet.
    let dead = params(&[
        ("Filter.1.Name", "instance-state-code"),
        ("Filter.1.Value.1", "48"),
    ]);
    let Before::Forward(prepared) = h.before(1.0, "DescribeInstances", &dead) else {
        panic!("refused");
    };
    assert_eq!(prepared.extra_params, Vec::<String>::new());
    let (_, body, _) = h.call(1.0, "DescribeInstances", &dead, 200, &both_dead);
    assert!(!body.contains(VM) && body.contains(OTHER_VM), "{body}");
    // By id, without filters.
    let by_id = params(&[("InstanceId.1", VM)]);
    let (_, body, _) = h.call(1.0, "DescribeInstances", &by_id, 200, INSTANCES);
    assert!(body.contains("<code>32</code><name>shutting-down</name>"));

    // Terminating again (moto: previous state terminated) keeps the window's end.
    let again = TERMINATE.replace(
        "<previousState><code>16</code><name>running</name>",
        "<previousState><code>48</code><name>terminated</name>",
    );
    assert_ne!(again, TERMINATE);
    h.call(4.0, "TerminateInstances", &terminate, 200, &again);
    let (_, body, seen) = h.call(5.0, "DescribeInstances", &by_id, 200, INSTANCES);
    assert_eq!((body.as_str(), seen), (INSTANCES, vec![]));
    let Before::Forward(prepared) = h.before(5.0, "DescribeInstances", &live) else {
        panic!("refused");
    };
    assert_eq!(prepared.extra_params, Vec::<String>::new());

    // An instance that was already terminated is not slowed at all.
    h.call(6.0, "TerminateInstances", &terminate, 200, &again);
    assert!(h.slow.windows.iter().all(|w| !w.open_at(h.at(6.0))));
}

#[test]
fn set_closes_open_windows() {
    let mut h = Harness::new(vec![SlowState::new(
        Transition::DbCreating,
        Duration::from_secs(60),
    )]);
    h.call(0.0, "CreateDBInstance", &create_x(), 200, CREATE);
    assert_eq!(h.slow.windows.len(), 1);
    h.slow.set(vec![SlowState::new(
        Transition::DbCreating,
        Duration::from_secs(60),
    )]);
    let listing = params(&[]);
    assert_eq!(
        h.call(1.0, "DescribeDBInstances", &listing, 200, LISTING).1,
        LISTING
    );
}
