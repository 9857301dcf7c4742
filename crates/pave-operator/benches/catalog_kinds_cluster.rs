//! `make bench`: every catalog kind's controller against a real control plane.
//!
//! A whole organisation's catalog in one namespace is created: 10,000 Components
//! (`PAVE_BENCH_COMPONENTS`, n), n/10 APIs, 3n/100 Systems, a few Domains, n/50
//! Groups and n/5 Users, drawn reproducibly (`pave_catalog::sample`). Groups form a
//! tree, Users belong to one or two Groups, Systems, Domains and APIs are owned by
//! Groups, and Components are shaped like the pure benchmark's catalog (dependencies,
//! 1% of them missing, a few cycles) with an owner (1% a Group that does not exist, 1%
//! a User), a System and APIs provided and consumed (a few missing). Then the
//! operator starts. Measured: the time until every object of every kind has the
//! status the pure catalog gives the same entities (`Ready`'s reason, a Group's
//! `memberCount`, a Component's `impact`), the status writes it took (target: one
//! per object), the writes in the following 60 s at rest (target: 0,
//! `PAVE_BENCH_REST_SECS`), and the operator's peak RSS (target: under 150 MiB). In
//! the same run a bare client applies the same statuses to a second copy of the
//! catalog with the same concurrency as the operator (32 per kind, every kind at
//! once), and the ratio of the two times is reported (target: at most 1.1).

#[path = "support/kinds.rs"]
mod kinds;
mod support;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use pave_api::{
    About, ApiEntity, ApiEntitySpec, CatalogEntity, Component, ComponentSpec, Definition, Domain,
    DomainSpec, Group, GroupSpec, System, SystemSpec, User, UserSpec,
};
use pave_catalog::sample::{Rng, random_catalog};
use pave_catalog::{Catalog, EntityRef, Kind};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use kinds::{catalog_status_writes, create_all_of};
use support::CONCURRENCY;

const NAMESPACE: &str = "bench";
const BARE_NAMESPACE: &str = "bench-bare";

/// A catalog kind as the benchmark handles it.
trait BenchKind:
    CatalogEntity
    + kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> BenchKind for K where
    K: CatalogEntity
        + kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// The organisation's catalog: every object of every kind.
struct Org {
    groups: Vec<Group>,
    users: Vec<User>,
    domains: Vec<Domain>,
    systems: Vec<System>,
    apis: Vec<ApiEntity>,
    components: Vec<Component>,
}

impl Org {
    fn len(&self) -> usize {
        self.groups.len()
            + self.users.len()
            + self.domains.len()
            + self.systems.len()
            + self.apis.len()
            + self.components.len()
    }

    fn sizes(&self) -> String {
        format!(
            "{} Components, {} APIs, {} Systems, {} Domains, {} Groups, {} Users",
            self.components.len(),
            self.apis.len(),
            self.systems.len(),
            self.domains.len(),
            self.groups.len(),
            self.users.len()
        )
    }
}

fn team(i: u64) -> String {
    format!("team-{i}")
}

/// The catalog for `n` Components, the same on every run.
fn org(n: usize) -> Org {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Names and dependencies as the pure benchmark draws them; the other references
    // are drawn below.
    let catalog = random_catalog(n, &mut rng);
    let apis = (n / 10).max(1) as u64;
    let systems = (3 * n / 100).max(1) as u64;
    let groups = (n / 50).max(3) as u64;
    let users = (n / 5).max(1) as u64;
    let domains = (n / 2000).max(2) as u64;
    let roots = (groups / 40).max(2);

    // A tree of Groups: the first few are roots, every other one names an earlier one
    // as its parent, and a quarter of the parents also list the child.
    let mut group_specs: Vec<GroupSpec> = (0..groups)
        .map(|i| GroupSpec {
            about: About::default(),
            type_: if i < roots { "business-unit" } else { "team" }.into(),
            profile: None,
            parent: (i >= roots).then(|| rng.below(i)).map(team),
            children: vec![],
            members: vec![],
        })
        .collect();
    for i in roots..groups {
        if rng.below(4) == 0 {
            let parent = group_specs[i as usize].parent.clone().unwrap();
            let parent: usize = parent["team-".len()..].parse().unwrap();
            group_specs[parent].children.push(team(i));
        }
    }
    // Each User is a member of one or two Groups; one in ten is also listed in its
    // first Group's `members`.
    let users: Vec<User> = (0..users)
        .map(|u| {
            let mut member_of = vec![team(rng.below(groups))];
            if rng.below(2) == 0 {
                let second = team(rng.below(groups));
                if second != member_of[0] {
                    member_of.push(second);
                }
            }
            if rng.below(10) == 0 {
                let first: usize = member_of[0]["team-".len()..].parse().unwrap();
                group_specs[first].members.push(format!("user-{u}"));
            }
            User::new(
                &format!("user-{u}"),
                UserSpec {
                    about: About::default(),
                    profile: None,
                    member_of,
                },
            )
        })
        .collect();
    let groups: Vec<Group> = group_specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| Group::new(&team(i as u64), spec))
        .collect();
    let group_count = groups.len() as u64;
    let domains: Vec<Domain> = (0..domains)
        .map(|d| {
            Domain::new(
                &format!("domain-{d}"),
                DomainSpec {
                    about: About::default(),
                    owner: team(rng.below(group_count)),
                    subdomain_of: None,
                    type_: None,
                },
            )
        })
        .collect();
    let domain_count = domains.len() as u64;
    // Half the Systems belong to a Domain.
    let systems: Vec<System> = (0..systems)
        .map(|s| {
            System::new(
                &format!("system-{s}"),
                SystemSpec {
                    about: About::default(),
                    owner: team(rng.below(group_count)),
                    domain: (rng.below(2) == 0)
                        .then(|| format!("domain-{}", rng.below(domain_count))),
                    type_: None,
                },
            )
        })
        .collect();
    let system_count = systems.len() as u64;
    let apis: Vec<ApiEntity> = (0..apis)
        .map(|a| {
            ApiEntity::new(
                &format!("api-{a}"),
                ApiEntitySpec {
                    about: About::default(),
                    type_: "openapi".into(),
                    lifecycle: "production".into(),
                    owner: team(rng.below(group_count)),
                    system: Some(format!("system-{}", rng.below(system_count))),
                    definition: Definition::Text("openapi: 3.0.0".into()),
                },
            )
        })
        .collect();
    let api_count = apis.len() as u64;
    let components = catalog
        .into_iter()
        .enumerate()
        .map(|(i, (name, refs))| {
            // 1% owned by a Group that does not exist, 1% by a User.
            let owner = match rng.below(100) {
                0 => format!("team-gone-{}", rng.below(50)),
                1 => format!("user:user-{}", rng.below(users.len() as u64)),
                _ => team(rng.below(group_count)),
            };
            let mut spec = ComponentSpec::new("service", "production", &owner);
            spec.system = Some(format!("system-{}", rng.below(system_count)));
            spec.depends_on = refs.depends_on;
            // Every tenth Component provides an API (each API has one provider), and
            // one in 200 provides one that does not exist.
            if i % 10 == 0 && ((i / 10) as u64) < api_count {
                spec.provides_apis.push(format!("api-{}", i / 10));
            }
            if rng.below(200) == 0 {
                spec.provides_apis
                    .push(format!("api-gone-{}", rng.below(100)));
            }
            // 0–3 consumed APIs, 1% of them missing.
            for _ in 0..rng.below(4) {
                let api = if rng.below(100) == 0 {
                    format!("api-gone-{}", rng.below(100))
                } else {
                    format!("api-{}", rng.below(api_count))
                };
                if !spec.consumes_apis.contains(&api) {
                    spec.consumes_apis.push(api);
                }
            }
            Component::new(&name, spec)
        })
        .collect();
    Org {
        groups,
        users,
        domains,
        systems,
        apis,
        components,
    }
}

/// What a correct status says about one object.
#[derive(Clone, Debug, PartialEq)]
struct Answer {
    reason: &'static str,
    /// Groups: how many Users belong to it, transitively.
    member_count: Option<i64>,
    /// Components: how many Components depend on it, transitively.
    impact: Option<i64>,
}

/// The answers for each kind (by its `kind`), then by object name.
type Expected = BTreeMap<String, BTreeMap<String, Answer>>;

fn feed<K: BenchKind>(catalog: &mut Catalog, objects: &[K]) {
    for object in objects {
        catalog.upsert(
            EntityRef::new(K::KIND, NAMESPACE, &object.name_any()),
            &object.refs(),
        );
    }
}

fn answers<K: BenchKind>(catalog: &Catalog, objects: &[K], expected: &mut Expected) {
    let answers = objects
        .iter()
        .map(|object| {
            let name = object.name_any();
            let view = catalog
                .view_of(&EntityRef::new(K::KIND, NAMESPACE, &name))
                .expect("every object is in the catalog");
            let reason = match (view.unresolved.is_empty(), view.cycle.is_some()) {
                (false, _) => "UnresolvedReference",
                (true, true) => "DependencyCycle",
                (true, false) => "Resolved",
            };
            let answer = Answer {
                reason,
                member_count: (K::KIND == Kind::Group).then_some(view.members.len() as i64),
                impact: (K::KIND == Kind::Component).then_some(i64::from(view.impact)),
            };
            (name, answer)
        })
        .collect();
    expected.insert(K::kind(&()).into_owned(), answers);
}

/// The pure catalog's answer for every object: what a correct status must say.
fn expected(org: &Org) -> Expected {
    let mut catalog = Catalog::new();
    catalog.defer();
    feed(&mut catalog, &org.groups);
    feed(&mut catalog, &org.users);
    feed(&mut catalog, &org.domains);
    feed(&mut catalog, &org.systems);
    feed(&mut catalog, &org.apis);
    feed(&mut catalog, &org.components);
    catalog.recompute();
    let mut expected = Expected::new();
    answers(&catalog, &org.groups, &mut expected);
    answers(&catalog, &org.users, &mut expected);
    answers(&catalog, &org.domains, &mut expected);
    answers(&catalog, &org.systems, &mut expected);
    answers(&catalog, &org.apis, &mut expected);
    answers(&catalog, &org.components, &mut expected);
    expected
}

/// Every kind the benchmark creates, as the API server serves it.
fn resources() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Group>(&()),
        ApiResource::erase::<User>(&()),
        ApiResource::erase::<Domain>(&()),
        ApiResource::erase::<System>(&()),
        ApiResource::erase::<ApiEntity>(&()),
        ApiResource::erase::<Component>(&()),
    ]
}

/// One object whose status is not what the catalog says, and why.
struct Wrong {
    kind: String,
    name: String,
    why: String,
}

/// Every object whose status does not say what `expected` does (absent ones too).
async fn wrong(client: &Client, expected: &Expected) -> Vec<Wrong> {
    let mut wrong = vec![];
    for resource in resources() {
        let answers = &expected[&resource.kind];
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
        let list = api
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list {}: {e}", resource.plural));
        let mut seen = 0;
        for object in &list.items {
            let name = object.name_any();
            let Some(answer) = answers.get(&name) else {
                continue;
            };
            seen += 1;
            let status = &object.data["status"];
            let observed = status["observedGeneration"].as_i64();
            let ready = status["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
            let reason = ready.and_then(|r| r["reason"].as_str());
            let member_count = status["memberCount"].as_i64();
            let impact = status["impact"].as_i64();
            let right = observed.is_some()
                && observed == object.metadata.generation
                && reason == Some(answer.reason)
                && (answer.member_count.is_none() || member_count == answer.member_count)
                && (answer.impact.is_none() || impact == answer.impact);
            if !right {
                let why = format!(
                    "status: observedGeneration {observed:?} (generation {:?}), Ready {reason:?} \
                     ({:?}), memberCount {member_count:?}, impact {impact:?}; expected {answer:?}",
                    object.metadata.generation,
                    ready.and_then(|r| r["message"].as_str()).unwrap_or(""),
                );
                wrong.push(Wrong {
                    kind: resource.kind.clone(),
                    name,
                    why,
                });
            }
        }
        if seen < answers.len() {
            let listed: std::collections::HashSet<String> =
                list.items.iter().map(ResourceExt::name_any).collect();
            for name in answers.keys().filter(|n| !listed.contains(*n)) {
                wrong.push(Wrong {
                    kind: resource.kind.clone(),
                    name: name.clone(),
                    why: "not listed".into(),
                });
            }
        }
    }
    wrong
}

/// Prints which objects are wrong, a few per kind, with their status and the answer.
fn report_wrong(wrong: &[Wrong]) {
    let mut per_kind: BTreeMap<&str, Vec<&Wrong>> = BTreeMap::new();
    for w in wrong {
        per_kind.entry(&w.kind).or_default().push(w);
    }
    for (kind, wrong) in per_kind {
        println!("  {kind}: {} wrong", wrong.len());
        for w in wrong.iter().take(20) {
            println!("    {kind} {}/{}: {}", NAMESPACE, w.name, w.why);
        }
    }
}

async fn create_org(client: &Client, namespace: &str, org: &Org) -> Duration {
    async fn create<K: BenchKind>(client: &Client, namespace: &str, objects: &[K]) -> Duration {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        create_all_of(&api, objects.to_vec()).await
    }
    create(client, namespace, &org.groups).await
        + create(client, namespace, &org.users).await
        + create(client, namespace, &org.domains).await
        + create(client, namespace, &org.systems).await
        + create(client, namespace, &org.apis).await
        + create(client, namespace, &org.components).await
}

#[tokio::main]
async fn main() {
    let n: usize = support::env_number("PAVE_BENCH_COMPONENTS", 10_000);
    let rest: u64 = support::env_number("PAVE_BENCH_REST_SECS", 60);
    let env = support::start_test_bed();
    let client = env.client().await.expect("client");
    for ns in [NAMESPACE, BARE_NAMESPACE] {
        env.run_kubectl(&["create", "namespace", ns]).unwrap();
    }
    let org = org(n);
    let total = org.len();
    let created = create_org(&client, NAMESPACE, &org).await;
    println!(
        "catalog kinds on a real control plane: {total} objects ({}) created in {:.1} s",
        org.sizes(),
        created.as_secs_f64()
    );
    let expected = expected(&org);
    let mut reasons: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (kind, answers) in &expected {
        for answer in answers.values() {
            *reasons.entry((kind, answer.reason)).or_default() += 1;
        }
    }
    let not_ready: Vec<String> = reasons
        .iter()
        .filter(|((_, reason), _)| *reason != "Resolved")
        .map(|((kind, reason), count)| format!("{count} {kind}s {reason}"))
        .collect();
    println!(
        "expected (pure catalog): Ready=False for {}",
        not_ready.join(", ")
    );

    // Two replicas, as the chart runs them; the time counts from the first one's start
    // (taking the Lease included).
    let started = Instant::now();
    let replicas = support::Replicas::start(&env, None, &env.moto_endpoint());
    let operator = &replicas.leader;
    let timeout = Duration::from_secs(support::env_number("PAVE_BENCH_TIMEOUT_SECS", 600));
    // Listing every object costs the API server as much as thousands of writes, so the
    // statuses are listed only once the operator's write counters say it is done (or
    // have stalled), not on every poll.
    let (mut last_writes, mut last_progress, mut last_write_seen) =
        (0.0, Instant::now(), Duration::ZERO);
    let mut listings = 0;
    // When the first write is seen: before it the operator starts, takes the Lease and
    // lists every kind (it writes nothing until every watch has listed).
    let mut first_write_seen = None;
    loop {
        let writes = catalog_status_writes(operator);
        if writes > last_writes {
            (last_writes, last_progress) = (writes, Instant::now());
            last_write_seen = started.elapsed();
            first_write_seen.get_or_insert(last_write_seen);
        }
        if writes >= total as f64 || last_progress.elapsed() > Duration::from_secs(5) {
            listings += 1;
            let wrong = wrong(&client, &expected).await;
            if wrong.is_empty() {
                break;
            }
            if started.elapsed() > timeout {
                println!(
                    "operator: only {} of {total} statuses correct after {} s ({writes} status writes); the wrong ones:",
                    total - wrong.len(),
                    timeout.as_secs()
                );
                report_wrong(&wrong);
                panic!("the operator did not converge");
            }
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged = started.elapsed();
    let writes = catalog_status_writes(operator);
    let per_controller: Vec<String> = kinds::CATALOG_CONTROLLERS
        .iter()
        .map(|c| format!("{c} {}", operator.writes_of(c)))
        .collect();
    println!(
        "operator: every status correct {:.1} s after start (status writes seen from {:.1} s to {:.1} s; {listings} listings); \
         {writes} status writes (target {total}: {})",
        converged.as_secs_f64(),
        first_write_seen.unwrap_or_default().as_secs_f64(),
        last_write_seen.as_secs_f64(),
        per_controller.join(", ")
    );
    tokio::time::sleep(Duration::from_secs(rest)).await;
    let at_rest = catalog_status_writes(operator) - writes;
    println!("at rest for {rest} s: {at_rest} status writes (target 0)");
    replicas.report_rss("< 150 MiB");
    replicas.stop();

    // The bare client: the same statuses, applied to a second copy of the catalog,
    // 32 at a time per kind and every kind at once, as the operator's controllers do.
    create_org(&client, BARE_NAMESPACE, &org).await;
    let mut kinds = vec![];
    for resource in resources() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
        let statuses: Vec<(String, Value)> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|object| {
                let mut status = object.data["status"].clone();
                status["observedGeneration"] = json!(object.metadata.generation);
                (object.name_any(), status)
            })
            .collect();
        let bare: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), BARE_NAMESPACE, &resource);
        kinds.push((resource, bare, Arc::new(statuses)));
    }
    let started = Instant::now();
    futures::future::try_join_all(kinds.into_iter().map(|(resource, bare, statuses)| {
        stream::iter(0..statuses.len())
            .map(move |i| {
                let (bare, statuses, resource) = (bare.clone(), statuses.clone(), resource.clone());
                async move {
                    let (name, status) = &statuses[i];
                    let body = json!({"apiVersion": resource.api_version, "kind": resource.kind, "status": status});
                    bare.patch_status(name, &PatchParams::apply("bench-bare").force(), &Patch::Apply(&body))
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
    }))
    .await
    .expect("bare status writes");
    let bare_time = started.elapsed();
    println!(
        "bare client: {total} status patches in {:.1} s; operator / bare = {:.2} (target <= 1.1); \
         to the last status write seen: {:.2}; the writes alone (first to last seen): {:.2}",
        bare_time.as_secs_f64(),
        converged.as_secs_f64() / bare_time.as_secs_f64(),
        last_write_seen.as_secs_f64() / bare_time.as_secs_f64(),
        (last_write_seen - first_write_seen.unwrap_or_default()).as_secs_f64()
            / bare_time.as_secs_f64()
    );
}
