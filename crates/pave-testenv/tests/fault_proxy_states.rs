//! The fault proxy's slow states against moto's real server, seen through pave's own
//! AWS driver: during each window the driver sees the state AWS would report (and
//! takes its waiting path), moto meanwhile holds its instant truth, and after the
//! window the driver sees moto's state. Plus a listing with one slowed and one normal
//! database, compared with moto's own answer, to show the rewriting touches nothing
//! it does not target. And listings paged as AWS pages them (moto answers some
//! whole), with pages over a size made slow.
//!
//! Each test has its own proxy (slow states are per proxy) and its own names, so the
//! tests share moto without resetting it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pave_cloud::aws::{Aws, Credentials, attr};
use pave_cloud::model::tags;
use pave_cloud::{Desired, Observed, ResourceKind, ResourceSpec, SecurityGroupRole};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::{
    Fault, FaultProxy, Reported, Rule, Seen, SlowState, Transition, When,
};

const REGION: &str = "eu-west-3";
/// An AMI moto 5.2.5 ships in every region.
const AMI: &str = "ami-04681a1dbd79675a5";
const PASSWORD: &str = "Slow-States-0f9e8d";
/// How long each slow state lasts. Long enough for the few calls a test makes inside
/// the window on a loaded machine; every "during" check also asserts it really ran
/// inside the window, so a slow machine fails loudly instead of passing vacuously.
const WINDOW: Duration = Duration::from_secs(6);

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "pave-testenv-tests")
}

/// A short id unique to this test run and call.
fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:x}{:02x}",
        (nanos / 1000) & 0xff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xff
    )
}

/// A proxy in front of the shared moto and pave's driver talking through it.
async fn through_proxy() -> (FaultProxy, Aws) {
    let env = TestEnv::shared();
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let aws = Aws::connect_with_credentials(REGION, Some(&proxy.endpoint()), credentials()).await;
    (proxy, aws)
}

/// One environment's resources, as pave's plan shapes them (a subset per test).
struct Env {
    short: String,
    cluster: String,
    tags: BTreeMap<String, String>,
    ids: BTreeMap<String, String>,
    created: Vec<(ResourceKind, Observed)>,
}

impl Env {
    fn new() -> Env {
        let short = unique();
        let uid = format!("{short}-0000-4000-8000-000000000000");
        let cluster = format!("slow-states-{short}");
        let tags = BTreeMap::from([
            (tags::ENVIRONMENT_UID.to_owned(), uid),
            (tags::ENVIRONMENT.to_owned(), "team/slow-states".to_owned()),
            (tags::CLUSTER.to_owned(), cluster.clone()),
        ]);
        Env {
            short,
            cluster,
            tags,
            ids: BTreeMap::new(),
            created: Vec::new(),
        }
    }

    fn uid(&self) -> &str {
        &self.tags[tags::ENVIRONMENT_UID]
    }

    fn name(&self, role: &str) -> String {
        format!("pave-{}-{role}", self.short)
    }

    fn network(&self) -> Vec<Desired> {
        let n = |role: &str| self.name(role);
        vec![
            Desired {
                kind: ResourceKind::Vpc,
                name: n("vpc"),
                spec: ResourceSpec::Vpc {
                    cidr: "10.80.0.0/20".into(),
                },
            },
            Desired {
                kind: ResourceKind::Subnet,
                name: n("subnet-a"),
                spec: ResourceSpec::Subnet {
                    vpc: n("vpc"),
                    cidr: "10.80.0.0/24".into(),
                    availability_zone: format!("{REGION}a"),
                },
            },
            Desired {
                kind: ResourceKind::Subnet,
                name: n("subnet-b"),
                spec: ResourceSpec::Subnet {
                    vpc: n("vpc"),
                    cidr: "10.80.1.0/24".into(),
                    availability_zone: format!("{REGION}b"),
                },
            },
            Desired {
                kind: ResourceKind::SecurityGroup,
                name: n("compute"),
                spec: ResourceSpec::SecurityGroup {
                    vpc: n("vpc"),
                    role: SecurityGroupRole::Compute,
                    db_port: None,
                    compute_group: None,
                },
            },
        ]
    }

    fn database(&self) -> Vec<Desired> {
        let n = |role: &str| self.name(role);
        vec![
            Desired {
                kind: ResourceKind::SecurityGroup,
                name: n("database"),
                spec: ResourceSpec::SecurityGroup {
                    vpc: n("vpc"),
                    role: SecurityGroupRole::Database,
                    db_port: Some(5432),
                    compute_group: Some(n("compute")),
                },
            },
            Desired {
                kind: ResourceKind::DbSubnetGroup,
                name: n("db-subnets"),
                spec: ResourceSpec::DbSubnetGroup {
                    subnets: vec![n("subnet-a"), n("subnet-b")],
                },
            },
        ]
    }

    fn db(&self, class: &str, storage_gib: i32) -> Desired {
        Desired {
            kind: ResourceKind::DbInstance,
            name: self.name("db"),
            spec: ResourceSpec::DbInstance {
                class: class.into(),
                engine: "postgres".into(),
                engine_version: Some("16.3".into()),
                storage_gib,
                subnet_group: self.name("db-subnets"),
                security_group: self.name("database"),
                database_name: "app".into(),
                username: "pave".into(),
            },
        }
    }

    fn vm(&self) -> Desired {
        Desired {
            kind: ResourceKind::Instance,
            name: self.name("vm-0"),
            spec: ResourceSpec::Instance {
                instance_type: "t3.small".into(),
                image_id: AMI.into(),
                subnet: self.name("subnet-a"),
                security_group: self.name("compute"),
            },
        }
    }

    async fn create(&mut self, aws: &Aws, desired: &Desired) -> Observed {
        let password = (desired.kind == ResourceKind::DbInstance).then_some(PASSWORD);
        let observed = aws
            .create(desired, &self.tags, &self.ids, password)
            .await
            .unwrap_or_else(|e| panic!("creating {}: {e}", desired.name));
        self.ids.insert(desired.name.clone(), observed.id.clone());
        self.created.push((desired.kind, observed.clone()));
        observed
    }

    async fn find(&self, aws: &Aws, desired: &Desired) -> Option<Observed> {
        aws.find(desired, self.uid(), &self.ids)
            .await
            .unwrap_or_else(|e| panic!("finding {}: {e}", desired.name))
    }

    /// The state the driver's inventory reports for the resource with this id.
    async fn inventoried(&self, aws: &Aws, kind: ResourceKind, id: &str) -> Option<String> {
        aws.inventory(&self.cluster)
            .await
            .expect("inventory")
            .into_iter()
            .find(|(k, o)| *k == kind && o.id == id)
            .map(|(_, o)| o.state)
    }

    /// Deletes what was created, newest first, waiting out anything still going.
    async fn teardown(&self, aws: &Aws) {
        for (kind, observed) in self.created.iter().rev() {
            let started = Instant::now();
            while !aws.delete(*kind, observed).await.expect("delete") {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{kind} {} not deleted",
                    observed.id
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Polls the driver until `check` holds; gives up after a minute.
async fn until<T, F, Fut>(what: &str, mut probe: F, check: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let started = Instant::now();
    loop {
        let value = probe().await;
        if check(&value) {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not happen within a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts the checks since `opened` ran inside a window opened then.
fn still_inside(opened: Instant, what: &str) {
    assert!(
        opened.elapsed() < WINDOW,
        "{what} took longer than the {WINDOW:?} window; the machine is too slow for this test"
    );
}

/// The requests for `action` that reached moto.
fn forwarded<'a>(seen: &'a [Seen], action: &str) -> Vec<&'a Seen> {
    seen.iter()
        .filter(|s| s.action == action && s.forwarded)
        .collect()
}

fn reported(seen: &[Seen], action: &str, resource: &str, state: &str) -> bool {
    let wanted = Reported {
        resource: resource.to_owned(),
        state: state.to_owned(),
    };
    seen.iter()
        .any(|s| s.action == action && s.reported.contains(&wanted))
}

/// A raw query-protocol call, SigV4-shaped but unsigned (moto and the proxy read
/// only the credential scope): `(status, body)`.
fn call(endpoint: &str, service: &str, form: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(endpoint.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The text of the first `<element>` in `xml`.
fn first<'a>(xml: &'a str, element: &str) -> Option<&'a str> {
    let open = format!("<{element}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{element}>"))?;
    Some(&xml[start..end])
}

/// What moto itself holds for a DB: its status, or the error code.
fn moto_db_status(identifier: &str) -> String {
    let (_, body) = call(
        &TestEnv::shared().moto_endpoint(),
        "rds",
        &format!("Action=DescribeDBInstances&Version=2014-10-31&DBInstanceIdentifier={identifier}"),
    );
    first(&body, "DBInstanceStatus")
        .or_else(|| first(&body, "Code"))
        .unwrap_or("?")
        .to_owned()
}

/// What moto itself holds for an instance: its state name.
fn moto_instance_state(id: &str) -> String {
    let (_, body) = call(
        &TestEnv::shared().moto_endpoint(),
        "ec2",
        &format!("Action=DescribeInstances&Version=2016-11-15&InstanceId.1={id}"),
    );
    first(first(&body, "instanceState").unwrap_or(""), "name")
        .unwrap_or("?")
        .to_owned()
}

#[tokio::test]
async fn pave_waits_through_a_database_creating_modifying_and_deleting() {
    let (proxy, aws) = through_proxy().await;
    let mut env = Env::new();
    for desired in env.network().into_iter().chain(env.database()) {
        env.create(&aws, &desired).await;
    }
    let db = env.db("db.t3.micro", 20);
    let name = db.name.clone();
    proxy.set_slow_states(vec![
        SlowState::new(Transition::DbCreating, WINDOW).only(&name),
        SlowState::new(Transition::DbModifying, WINDOW).only(&name),
        SlowState::new(Transition::DbDeleting, WINDOW).only(&name),
    ]);

    // Creating: the driver's own create reports it, and so does every look-up.
    let opened = Instant::now();
    let created = env.create(&aws, &db).await;
    assert_eq!(
        (created.state.as_str(), created.endpoint.as_ref()),
        ("creating", None)
    );
    assert_eq!(moto_db_status(&name), "available", "moto's own truth");
    let found = env.find(&aws, &db).await.expect("found while creating");
    assert_eq!(
        (found.state.as_str(), found.endpoint.as_ref()),
        ("creating", None)
    );
    assert_eq!(
        env.inventoried(&aws, ResourceKind::DbInstance, &name)
            .await
            .as_deref(),
        Some("creating")
    );
    // A spec change now is deferred, as on AWS: the driver does not even ask.
    let bigger = env.db("db.t3.small", 20);
    let changes = aws.reconcile(&bigger, &found, &env.tags).await.unwrap();
    assert_eq!(changes, Vec::<String>::new());
    assert_eq!(forwarded(&proxy.requests(), "ModifyDBInstance").len(), 0);
    still_inside(opened, "the checks while creating");
    let available = until(
        "available after creating",
        || env.find(&aws, &db),
        |o| o.as_ref().is_some_and(|o| o.state == "available"),
    )
    .await
    .unwrap();
    assert!(opened.elapsed() >= WINDOW, "creating ended early");
    let (address, port) = available
        .endpoint
        .clone()
        .expect("an endpoint once available");
    assert!(address.contains(&name) && port == 5432, "{address}:{port}");
    assert!(reported(
        &proxy.requests(),
        "DescribeDBInstances",
        &name,
        "creating"
    ));

    // Modifying: the change is asked for once; while it applies, another is deferred.
    let opened = Instant::now();
    let changes = aws.reconcile(&bigger, &available, &env.tags).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let modifying = env.find(&aws, &db).await.unwrap();
    assert_eq!(modifying.state, "modifying");
    assert_eq!(modifying.attributes[attr::CLASS], "db.t3.small");
    assert!(
        modifying.endpoint.is_some(),
        "a modifying DB keeps its address"
    );
    let more_storage = env.db("db.t3.small", 30);
    let changes = aws
        .reconcile(&more_storage, &modifying, &env.tags)
        .await
        .unwrap();
    assert_eq!(changes, Vec::<String>::new(), "deferred while modifying");
    let modifies = proxy.requests();
    let modifies = forwarded(&modifies, "ModifyDBInstance");
    assert_eq!(modifies.len(), 1);
    assert_eq!(
        modifies[0].param("DBInstanceIdentifier"),
        Some(name.as_str())
    );
    assert_eq!(modifies[0].param("DBInstanceClass"), Some("db.t3.small"));
    still_inside(opened, "the checks while modifying");
    until(
        "available after modifying",
        || env.find(&aws, &db),
        |o| o.as_ref().is_some_and(|o| o.state == "available"),
    )
    .await;
    assert!(opened.elapsed() >= WINDOW, "modifying ended early");

    // Deleting: not gone yet, asked once, still listed and found, though moto has
    // forgotten it.
    proxy.clear_requests();
    let observed = env.find(&aws, &db).await.unwrap();
    let opened = Instant::now();
    assert!(
        !aws.delete(ResourceKind::DbInstance, &observed)
            .await
            .unwrap()
    );
    assert_eq!(
        moto_db_status(&name),
        "DBInstanceNotFound",
        "moto's own truth"
    );
    assert!(
        !aws.delete(ResourceKind::DbInstance, &observed)
            .await
            .unwrap()
    );
    let deleting = env.find(&aws, &db).await.expect("found while deleting");
    assert_eq!(deleting.state, "deleting");
    assert_eq!(
        env.inventoried(&aws, ResourceKind::DbInstance, &name)
            .await
            .as_deref(),
        Some("deleting"),
        "the inventory, which finds DBs by their tags, still lists it"
    );
    let seen = proxy.requests();
    let deletes = forwarded(&seen, "DeleteDBInstance");
    assert_eq!(deletes.len(), 1, "the driver looks before it deletes again");
    assert_eq!(
        deletes[0].param("DBInstanceIdentifier"),
        Some(name.as_str())
    );
    // A caller that does ask again gets RDS's answer, not moto's "not found".
    let (status, body) = call(
        &proxy.endpoint(),
        "rds",
        &format!(
            "Action=DeleteDBInstance&Version=2014-10-31&DBInstanceIdentifier={name}&SkipFinalSnapshot=true"
        ),
    );
    assert_eq!(status, 400);
    assert_eq!(
        first(&body, "Code"),
        Some("InvalidDBInstanceState"),
        "{body}"
    );
    let last = proxy.requests().pop().unwrap();
    assert!(!last.forwarded && last.status == Some(400));
    still_inside(opened, "the checks while deleting");
    until(
        "deleted",
        || aws.delete(ResourceKind::DbInstance, &observed),
        |gone| *gone.as_ref().unwrap(),
    )
    .await
    .unwrap();
    assert!(opened.elapsed() >= WINDOW, "deleting ended early");
    assert_eq!(env.find(&aws, &db).await, None);
    assert_eq!(forwarded(&proxy.requests(), "DeleteDBInstance").len(), 1);

    env.created
        .retain(|(kind, _)| *kind != ResourceKind::DbInstance);
    env.teardown(&aws).await;
}

#[tokio::test]
async fn pave_waits_through_an_instance_pending_and_shutting_down() {
    let (proxy, aws) = through_proxy().await;
    let mut env = Env::new();
    for desired in env.network() {
        env.create(&aws, &desired).await;
    }
    let vm = env.vm();
    // By name: the instance's id is not known before it is launched.
    proxy.set_slow_states(vec![
        SlowState::new(Transition::InstancePending, WINDOW).only(&vm.name),
        SlowState::new(Transition::InstanceShuttingDown, WINDOW).only(&vm.name),
    ]);

    let opened = Instant::now();
    let launched = env.create(&aws, &vm).await;
    let id = launched.id.clone();
    assert_eq!(launched.state, "pending");
    assert_eq!(moto_instance_state(&id), "running", "moto's own truth");
    let found = env.find(&aws, &vm).await.expect("found while pending");
    assert_eq!(
        (found.id.as_str(), found.state.as_str()),
        (id.as_str(), "pending")
    );
    // Found by tags alone too (no subnet scope), and in the inventory.
    let by_tags = aws.find(&vm, env.uid(), &BTreeMap::new()).await.unwrap();
    assert_eq!(by_tags.map(|o| o.state).as_deref(), Some("pending"));
    assert_eq!(
        env.inventoried(&aws, ResourceKind::Instance, &id)
            .await
            .as_deref(),
        Some("pending")
    );
    // A pending instance is live: creating again launches nothing new.
    let again = env.create(&aws, &vm).await;
    assert_eq!(again.id, id);
    assert_eq!(forwarded(&proxy.requests(), "RunInstances").len(), 1);
    still_inside(opened, "the checks while pending");
    until(
        "running",
        || env.find(&aws, &vm),
        |o| o.as_ref().is_some_and(|o| o.state == "running"),
    )
    .await;
    assert!(opened.elapsed() >= WINDOW, "pending ended early");

    // Shutting down: not gone, found and inventoried as shutting-down, terminated once.
    proxy.clear_requests();
    let opened = Instant::now();
    assert!(!aws.delete(ResourceKind::Instance, &launched).await.unwrap());
    assert_eq!(moto_instance_state(&id), "terminated", "moto's own truth");
    let dying = env
        .find(&aws, &vm)
        .await
        .expect("found while shutting down");
    assert_eq!(
        (dying.id.as_str(), dying.state.as_str()),
        (id.as_str(), "shutting-down")
    );
    assert_eq!(
        env.inventoried(&aws, ResourceKind::Instance, &id)
            .await
            .as_deref(),
        Some("shutting-down")
    );
    assert!(!aws.delete(ResourceKind::Instance, &launched).await.unwrap());
    let seen = proxy.requests();
    let terminates = forwarded(&seen, "TerminateInstances");
    assert_eq!(terminates.len(), 1, "the driver does not terminate twice");
    assert_eq!(terminates[0].values("InstanceId"), [id.as_str()]);
    assert!(reported(&seen, "DescribeInstances", &id, "shutting-down"));
    still_inside(opened, "the checks while shutting down");
    until(
        "terminated",
        || aws.delete(ResourceKind::Instance, &launched),
        |gone| *gone.as_ref().unwrap(),
    )
    .await
    .unwrap();
    assert!(opened.elapsed() >= WINDOW, "shutting-down ended early");
    assert_eq!(env.find(&aws, &vm).await, None);
    assert_eq!(
        env.inventoried(&aws, ResourceKind::Instance, &id).await,
        None
    );

    env.created
        .retain(|(kind, _)| *kind != ResourceKind::Instance);
    env.teardown(&aws).await;
}

/// moto's answer with what changes between two identical calls blanked: the request
/// id and the restorable time (moto stamps "now" on every describe).
fn stable(xml: &str) -> String {
    let mut out = xml.to_owned();
    for element in ["RequestId", "LatestRestorableTime"] {
        let (open, close) = (format!("<{element}>"), format!("</{element}>"));
        let mut at = 0;
        while let Some(start) = out[at..].find(&open).map(|i| at + i + open.len()) {
            let end = start + out[start..].find(&close).unwrap();
            out.replace_range(start..end, "…");
            at = start;
        }
    }
    out
}

/// One `<DBInstance>` element of a listing, by identifier.
fn record<'a>(listing: &'a str, identifier: &str) -> &'a str {
    let at = listing
        .find(&format!("<DBInstanceIdentifier>{identifier}<"))
        .unwrap_or_else(|| panic!("{identifier} not listed: {listing}"));
    let start = listing[..at].rfind("<DBInstance>").unwrap();
    let end = at + listing[at..].find("</DBInstance>").unwrap() + "</DBInstance>".len();
    &listing[start..end]
}

#[test]
fn a_listing_with_one_slowed_database_differs_from_motos_only_there() {
    let env = TestEnv::shared();
    let proxy = FaultProxy::start(&env.moto_endpoint()).unwrap();
    let short = unique();
    let (slowed, normal) = (format!("pave-{short}-a-db"), format!("pave-{short}-b-db"));
    proxy.set_slow_states(vec![
        SlowState::new(Transition::DbCreating, WINDOW).only(&slowed),
        SlowState::new(Transition::DbDeleting, WINDOW).only(&slowed),
    ]);
    let create = |identifier: &str| {
        format!(
            "Action=CreateDBInstance&Version=2014-10-31&DBInstanceIdentifier={identifier}\
             &DBInstanceClass=db.t3.micro&Engine=postgres&AllocatedStorage=20\
             &MasterUsername=pave&MasterUserPassword={PASSWORD}&DBName=app\
             &Tags.Tag.1.Key=pave.dev%2Fcluster-id&Tags.Tag.1.Value=slow-{short}"
        )
    };
    let listing = format!(
        "Action=DescribeDBInstances&Version=2014-10-31\
         &Filters.Filter.1.Name=db-instance-id\
         &Filters.Filter.1.Values.Value.1={slowed}&Filters.Filter.1.Values.Value.2={normal}"
    );
    let opened = Instant::now();
    assert_eq!(call(&proxy.endpoint(), "rds", &create(&slowed)).0, 200);
    assert_eq!(call(&proxy.endpoint(), "rds", &create(&normal)).0, 200);

    // Through the proxy and straight from moto, back to back.
    let (status, proxied) = call(&proxy.endpoint(), "rds", &listing);
    let (_, direct) = call(&env.moto_endpoint(), "rds", &listing);
    assert_eq!(status, 200);
    let (proxied, direct) = (stable(&proxied), stable(&direct));
    let moto_record = record(&direct, &slowed);
    let endpoint = format!(
        "<Endpoint>{}</Endpoint>",
        first(moto_record, "Endpoint").unwrap()
    );
    let creating = moto_record
        .replace(
            "<DBInstanceStatus>available</DBInstanceStatus>",
            "<DBInstanceStatus>creating</DBInstanceStatus>",
        )
        .replace(&endpoint, "");
    assert_ne!(creating, moto_record);
    assert_eq!(proxied, direct.replace(moto_record, &creating));
    assert_eq!(record(&proxied, &normal), record(&direct, &normal));
    still_inside(opened, "the creating listing");

    // Deleted (RDS deletes a DB that is still creating, and so does the proxy): moto
    // lists only the other one; the proxy appends the deleting record.
    let opened = Instant::now();
    let (status, _) = call(
        &proxy.endpoint(),
        "rds",
        &format!(
            "Action=DeleteDBInstance&Version=2014-10-31&DBInstanceIdentifier={slowed}&SkipFinalSnapshot=true"
        ),
    );
    assert_eq!(status, 200);
    // The window opened when moto answered, before this.
    let answered = Instant::now();
    let (_, proxied) = call(&proxy.endpoint(), "rds", &listing);
    let (_, direct) = call(&env.moto_endpoint(), "rds", &listing);
    let (proxied, direct) = (stable(&proxied), stable(&direct));
    assert!(!direct.contains(&slowed), "moto forgot it at once");
    let deleting = record(&proxied, &slowed);
    assert_eq!(first(deleting, "DBInstanceStatus"), Some("deleting"));
    assert!(
        deleting.contains(&format!("<Value>slow-{short}</Value>")),
        "tags kept"
    );
    assert_eq!(
        proxied,
        direct.replace("</DBInstances>", &format!("{deleting}</DBInstances>"))
    );
    // By identifier: 200 and the record, where moto says DBInstanceNotFound.
    let targeted =
        format!("Action=DescribeDBInstances&Version=2014-10-31&DBInstanceIdentifier={slowed}");
    let (status, body) = call(&proxy.endpoint(), "rds", &targeted);
    assert_eq!(
        (status, first(&body, "DBInstanceStatus")),
        (200, Some("deleting"))
    );
    assert_eq!(call(&env.moto_endpoint(), "rds", &targeted).0, 404);
    // Deleting or creating it again is refused as RDS refuses it, without moto.
    let (status, body) = call(
        &proxy.endpoint(),
        "rds",
        &format!("Action=DeleteDBInstance&Version=2014-10-31&DBInstanceIdentifier={slowed}"),
    );
    assert_eq!(
        (status, first(&body, "Code")),
        (400, Some("InvalidDBInstanceState"))
    );
    let (status, body) = call(&proxy.endpoint(), "rds", &create(&slowed));
    assert_eq!(
        (status, first(&body, "Code")),
        (400, Some("DBInstanceAlreadyExists"))
    );
    still_inside(opened, "the deleting checks");

    // After the window, moto's answer again.
    std::thread::sleep(WINDOW.saturating_sub(answered.elapsed()));
    let (status, body) = call(&proxy.endpoint(), "rds", &targeted);
    assert_eq!(
        (status, first(&body, "Code")),
        (404, Some("DBInstanceNotFound"))
    );

    // The log names what was deleted: the slowed DB, once by moto, never the other.
    let seen = proxy.requests();
    let deletes: Vec<(Option<&str>, bool)> = seen
        .iter()
        .filter(|s| s.action == "DeleteDBInstance")
        .map(|s| (s.param("DBInstanceIdentifier"), s.forwarded))
        .collect();
    assert_eq!(
        deletes,
        [
            (Some(slowed.as_str()), true),
            (Some(slowed.as_str()), false)
        ]
    );

    let (status, _) = call(
        &env.moto_endpoint(),
        "rds",
        &format!(
            "Action=DeleteDBInstance&Version=2014-10-31&DBInstanceIdentifier={normal}&SkipFinalSnapshot=true"
        ),
    );
    assert_eq!(status, 200);
}

/// A security group straight at moto, tagged `pave.dev/cluster-id=cluster`: its id.
fn moto_group(vpc: &str, name: &str, cluster: &str) -> String {
    let (status, body) = call(
        &TestEnv::shared().moto_endpoint(),
        "ec2",
        &format!(
            "Action=CreateSecurityGroup&Version=2016-11-15&GroupName={name}&GroupDescription=paging\
             &VpcId={vpc}&TagSpecification.1.ResourceType=security-group\
             &TagSpecification.1.Tag.1.Key=pave.dev%2Fcluster-id&TagSpecification.1.Tag.1.Value={cluster}"
        ),
    );
    assert_eq!(status, 200, "{body}");
    first(&body, "groupId").unwrap().to_owned()
}

/// Every `<groupId>` directly under an item of the answer's `securityGroupInfo`.
fn group_ids(body: &str) -> Vec<String> {
    body.split("<item><groupId>")
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
        .collect()
}

#[test]
fn listings_are_paged_as_aws_pages_them_and_large_pages_can_be_slow() {
    let env = TestEnv::shared();
    let proxy = FaultProxy::start(&env.moto_endpoint()).unwrap();
    let short = unique();
    let cluster = format!("paging-{short}");
    let (status, body) = call(
        &env.moto_endpoint(),
        "ec2",
        "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.81.0.0/20",
    );
    assert_eq!(status, 200, "{body}");
    let vpc = first(&body, "vpcId").unwrap().to_owned();
    let mut created: Vec<String> = (0..7)
        .map(|i| moto_group(&vpc, &format!("pave-{short}-{i}"), &cluster))
        .collect();
    created.sort();
    let listing = |size: usize, token: Option<&str>| {
        let mut form = format!(
            "Action=DescribeSecurityGroups&Version=2016-11-15&Filter.1.Name=tag%3Apave.dev%2Fcluster-id\
             &Filter.1.Value.1={cluster}&MaxResults={size}"
        );
        if let Some(token) = token {
            form.push_str(&format!("&NextToken={token}"));
        }
        form
    };

    // The premise: moto answers the whole listing, whatever the page size.
    let (_, whole) = call(&env.moto_endpoint(), "ec2", &listing(5, None));
    assert_eq!(group_ids(&whole).len(), 7, "{whole}");
    assert_eq!(first(&whole, "nextToken"), None);
    // Through the proxy, without AWS paging: the same.
    let (_, body) = call(&proxy.endpoint(), "ec2", &listing(5, None));
    assert_eq!(group_ids(&body).len(), 7);

    // With it: pages of 5 and 2, joined by the proxy's token, moto's order kept.
    proxy.set_aws_paging(true);
    let (status, page) = call(&proxy.endpoint(), "ec2", &listing(5, None));
    assert_eq!(status, 200, "{page}");
    let token = first(&page, "nextToken").expect("a token").to_owned();
    let (_, last) = call(&proxy.endpoint(), "ec2", &listing(5, Some(&token)));
    assert_eq!(first(&last, "nextToken"), None, "{last}");
    let (mut first_page, mut second_page) = (group_ids(&page), group_ids(&last));
    assert_eq!((first_page.len(), second_page.len()), (5, 2));
    first_page.append(&mut second_page);
    assert_eq!(first_page, group_ids(&whole));
    first_page.sort();
    assert_eq!(first_page, created);
    // A page size larger than the listing: moto's answer, byte for byte.
    let (_, all) = call(&proxy.endpoint(), "ec2", &listing(1000, None));
    assert_eq!(stable_request_id(&all), stable_request_id(&whole));

    // Slow pages: more than 5 groups answer 2 s late, 5 or fewer at once.
    proxy.clear_requests();
    let delay = Duration::from_secs(2);
    proxy.set_rules(vec![Rule::new(
        ["DescribeSecurityGroups"],
        When::Always,
        Fault::SlowPages {
            items_over: 5,
            delay,
        },
    )]);
    let started = Instant::now();
    let (status, _) = call(&proxy.endpoint(), "ec2", &listing(1000, None));
    assert_eq!(status, 200);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    let started = Instant::now();
    call(&proxy.endpoint(), "ec2", &listing(5, None));
    call(&proxy.endpoint(), "ec2", &listing(5, Some(&token)));
    assert!(started.elapsed() < delay, "{:?}", started.elapsed());
    // The log has each page's size, what it held and which were slowed.
    let seen: Vec<(Option<String>, Option<usize>, bool)> = proxy
        .requests()
        .iter()
        .map(|s| {
            (
                s.param("MaxResults").map(str::to_owned),
                s.items,
                matches!(s.fault, Some(Fault::SlowPages { .. })),
            )
        })
        .collect();
    let size = |n: &str| Some(n.to_owned());
    assert_eq!(
        seen,
        [
            (size("1000"), Some(7), true),
            (size("5"), Some(5), false),
            (size("5"), Some(2), false)
        ]
    );
}

/// The answer without its request id, which moto makes up per answer.
fn stable_request_id(body: &str) -> String {
    match (body.find("<requestId>"), body.find("</requestId>")) {
        (Some(start), Some(end)) => format!("{}{}", &body[..start], &body[end..]),
        _ => body.to_owned(),
    }
}
