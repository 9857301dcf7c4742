//! Throughput of the scorecard engine on one core: 10,000 components × 20 scorecards ×
//! 10 rules, operators and property kinds mixed the way a real catalog mixes them
//! (meta properties, spec fields, numeric-string annotations, aliases, dates, relation
//! counts). Reports rule evaluations per second for a compiled scorecard reused across
//! components (what the controller should do) and for the one-shot `evaluate`.
//!
//! `cargo bench -p pave-score --bench engine`; the target is ≥ 2 million/s.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use pave_score::{Entity, Scorecard, evaluate, selects};
use serde_json::{Value, json};

const ENTITIES: usize = 10_000;
const SCORECARDS: usize = 20;
const RULES: usize = 10;
const ROUNDS: usize = 3;

/// A deterministic generator, so every run scores the same catalog.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn entity(index: usize, rng: &mut Lcg) -> Entity {
    let lifecycle = ["production", "experimental", "deprecated"][rng.below(3) as usize];
    let kind = ["service", "website", "library"][rng.below(3) as usize];
    let mut spec = json!({
        "type": kind,
        "lifecycle": lifecycle,
        "owner": format!("team-{}", index % 40),
        "system": if rng.chance(20) { format!("legacy-{}", index % 7) } else { format!("system-{}", index % 13) },
        "dependsOn": (0..rng.below(4)).map(|d| format!("component:svc-{}", (index + d as usize) % 997)).collect::<Vec<_>>(),
    });
    if rng.chance(60) {
        spec["links"] =
            json!([{"url": format!("https://runbooks/svc-{index}/runbook"), "title": "Runbook"}]);
    }
    if rng.chance(30) {
        spec["description"] = json!("A service");
    }
    let mut properties = serde_json::Map::new();
    // Most coverage is a number, some a numeric string (as from an annotation), a
    // few are junk and make the rule fail with an error.
    let coverage = rng.below(101);
    let coverage = match rng.below(100) {
        0 => json!("unknown"),
        1..=20 => json!(coverage.to_string()),
        _ => json!(coverage),
    };
    properties.insert("coverage".into(), coverage);
    if rng.chance(50) {
        properties.insert(
            "runbook_url".into(),
            json!(format!("https://runbooks/svc-{index}")),
        );
    }
    properties.insert(
        "languages".into(),
        json!(["java", "kotlin", "go", "rust", "python"][..1 + rng.below(3) as usize]),
    );
    properties.insert(
        "released".into(),
        json!(format!(
            "20{:02}-0{}-1{}T00:00:00Z",
            20 + rng.below(6),
            1 + rng.below(9),
            rng.below(10)
        )),
    );
    properties.insert("owners".into(), json!({"primary": "alice"}));

    let mut annotations = BTreeMap::new();
    annotations.insert(
        "github.com/project-slug".into(),
        format!("my-org/svc-{index}"),
    );
    annotations.insert(
        "backstage.io/source-location".into(),
        "url:https://github.com/my-org".into(),
    );
    if rng.chance(70) {
        annotations.insert("pagerduty.com/service-id".into(), format!("P{index:05}"));
    }
    if rng.chance(50) {
        annotations.insert("backstage.io/techdocs-ref".into(), "dir:.".into());
    }
    if rng.chance(30) {
        annotations.insert("sonarqube.org/project-key".into(), format!("svc-{index}"));
    }
    let mut labels = BTreeMap::new();
    labels.insert(
        "tier".into(),
        ["critical", "standard", "deprecated"][rng.below(3) as usize].into(),
    );
    labels.insert("app.kubernetes.io/part-of".into(), "payments".into());

    Entity {
        name: format!("svc-{index}"),
        namespace: format!("team-{}", index % 40),
        title: None,
        owner_resolved: Some(rng.chance(90)),
        owner: if rng.chance(95) {
            format!("team-{}", index % 40)
        } else {
            String::new()
        },
        tags: ["java", "payments", "go", "internal"][..rng.below(4) as usize]
            .iter()
            .map(|t| t.to_string())
            .collect(),
        spec: match spec {
            Value::Object(map) => map,
            _ => unreachable!(),
        },
        properties,
        annotations,
        labels,
        relation_counts: BTreeMap::from([
            ("dependsOn".into(), rng.below(4) as i64),
            ("dependencyOf".into(), rng.below(10) as i64),
        ]),
    }
}

/// Conditions a platform team writes; each scorecard takes ten, rotated.
fn condition_pool() -> Vec<Value> {
    vec![
        json!({"property": "$team", "operator": "isNotEmpty"}),
        json!({"property": "$identifier", "operator": "isNotEmpty"}),
        json!({"property": "runbook_url", "operator": "isNotEmpty"}),
        json!({"property": "pagerduty_service_id", "operator": "isNotEmpty"}),
        json!({"property": "coverage", "operator": ">=", "value": 80}),
        json!({"property": "coverage", "operator": "between", "value": {"from": 50, "to": 100}}),
        json!({"property": "lifecycle", "operator": "=", "value": "production"}),
        json!({"property": "lifecycle", "operator": "in", "value": ["production", "experimental"]}),
        json!({"property": "type", "operator": "!=", "value": "library"}),
        json!({"property": "$tags", "operator": "contains", "value": "java"}),
        json!({"property": "$tags", "operator": "containsAny", "value": ["go", "rust"]}),
        json!({"property": "languages", "operator": "doesNotContains", "value": "cobol"}),
        json!({"property": "github_project_slug", "operator": "beginsWith", "value": "my-org/"}),
        json!({"property": "annotations.backstage.io/techdocs-ref", "operator": "isNotEmpty"}),
        json!({"property": "spec.links.0.url", "operator": "endsWith", "value": "/runbook"}),
        json!({"property": "$dependsOn", "operator": "<=", "value": 2}),
        json!({"property": "$unresolvedRefs", "operator": "=", "value": 0}),
        json!({"property": "released", "operator": ">", "value": "2023-01-01T00:00:00Z"}),
        json!({"property": "labels.tier", "operator": "notIn", "value": ["deprecated"]}),
        json!({"property": "system", "operator": "doesNotBeginsWith", "value": "legacy-"}),
        json!({"property": "description", "operator": "isEmpty"}),
        json!({"property": "sonarqube_project_key", "operator": "isNotEmpty"}),
        json!({"property": "properties.owners.primary", "operator": "=", "value": "alice"}),
    ]
}

fn scorecard(index: usize, pool: &[Value]) -> Scorecard {
    let levels = ["Basic", "Bronze", "Silver", "Gold"];
    let rules: Vec<Value> = (0..RULES)
        .map(|r| {
            let first = pool[(index * 3 + r) % pool.len()].clone();
            // Every third rule joins two conditions, alternating and/or.
            let mut conditions = vec![first];
            if r % 3 == 2 {
                conditions.push(pool[(index * 7 + r * 5 + 1) % pool.len()].clone());
            }
            json!({
                "identifier": format!("rule-{r}"),
                "level": levels[(r * levels.len()) / RULES],
                "query": {"combinator": if r % 2 == 0 { "and" } else { "or" }, "conditions": conditions},
            })
        })
        .collect();
    let mut value = json!({
        "identifier": format!("scorecard-{index}"),
        "levels": levels.iter().map(|t| json!({"title": t})).collect::<Vec<_>>(),
        "rules": rules,
    });
    if index.is_multiple_of(2) {
        value["filter"] = json!({"combinator": "and", "conditions": [
            {"property": "lifecycle", "operator": "!=", "value": "deprecated"}]});
    }
    Scorecard::from_value(value).expect("bench scorecards are valid")
}

/// Runs `pass` ROUNDS times; returns the fastest, which is the least disturbed by
/// whatever else shares the machine.
fn best_of(mut pass: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut checksum = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        checksum = black_box(pass());
        best = best.min(start.elapsed());
    }
    (best, checksum)
}

fn report(label: &str, elapsed: Duration) {
    let evaluations = (ENTITIES * SCORECARDS * RULES) as f64;
    let per_second = evaluations / elapsed.as_secs_f64();
    println!(
        "{label:<34} {:>8.1} ms  {:>6.2} M rule evaluations/s  {:>5.0} ns/rule",
        elapsed.as_secs_f64() * 1e3,
        per_second / 1e6,
        elapsed.as_nanos() as f64 / evaluations,
    );
}

fn main() {
    let mut rng = Lcg(0x5eed);
    let entities: Vec<Entity> = (0..ENTITIES).map(|i| entity(i, &mut rng)).collect();
    let pool = condition_pool();
    let scorecards: Vec<Scorecard> = (0..SCORECARDS).map(|i| scorecard(i, &pool)).collect();
    assert!(scorecards.iter().all(|s| s.problems().is_empty()));

    println!(
        "pave-score engine: {ENTITIES} entities × {SCORECARDS} scorecards × {RULES} rules = {} rule evaluations per pass, best of {ROUNDS}, one thread",
        ENTITIES * SCORECARDS * RULES
    );

    // The checksum (rules passed) keeps the work observable and shows the catalog is
    // varied: neither everything nor nothing passes.
    let (compiled, passed) = best_of(|| {
        let mut passed = 0;
        for scorecard in &scorecards {
            let compiled = scorecard.compile();
            for entity in &entities {
                let _ = black_box(compiled.selects(entity));
                let evaluation = compiled.evaluate(entity);
                passed += evaluation.rules.iter().filter(|r| r.passed).count();
            }
        }
        passed
    });
    report("compiled once per scorecard", compiled);

    let (one_shot, passed_one_shot) = best_of(|| {
        let mut passed = 0;
        for scorecard in &scorecards {
            for entity in &entities {
                let _ = black_box(selects(scorecard, entity));
                let evaluation = evaluate(scorecard, entity);
                passed += evaluation.rules.iter().filter(|r| r.passed).count();
            }
        }
        passed
    });
    report("evaluate(scorecard, entity)", one_shot);

    assert_eq!(passed, passed_one_shot);
    println!(
        "rules passed: {passed} of {} ({:.0}%)",
        ENTITIES * SCORECARDS * RULES,
        100.0 * passed as f64 / (ENTITIES * SCORECARDS * RULES) as f64
    );
}
