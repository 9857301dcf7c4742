//! Between pave's objects and the scorecard engine (`pave-score`): what the engine
//! reads of a Component, the `status.scores` entries it produces, and a Scorecard's
//! summary over every Component it evaluated. Pure functions over plain data.
//!
//! Decisions written down here:
//! - The level shown in `kubectl get comp` is the first score's. Scores are ordered
//!   with Scorecards annotated `platform.pave.dev/primary: "true"` first, then by name,
//!   so a platform team chooses which level the column shows.
//! - `lastChanged` moves only when the level changes.
//! - A Scorecard's level counts list every level lowest first, then `none` for the
//!   Components that reach no level.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};
use pave_api::component::{RuleResult, Score};
use pave_api::conditions::{self, READY, Status};
use pave_api::scorecard::{LevelCount, RulePassRate, ScorecardStatus};
use pave_api::{Component, Scorecard};
use pave_catalog::EntityView;
use pave_score::Evaluation;

/// The annotation that puts a Scorecard's level first on every Component.
pub const PRIMARY_ANNOTATION: &str = "platform.pave.dev/primary";

/// A Scorecard as the engine reads it, or why it cannot.
#[derive(Clone, Debug)]
pub struct ParsedScorecard {
    pub name: String,
    pub primary: bool,
    pub generation: Option<i64>,
    pub scorecard: Result<pave_score::Scorecard, String>,
    /// `spec.selector` and `spec.namespaceSelector`; a selector that does not parse
    /// selects nothing, and the Scorecard's condition says why.
    pub selector: Result<Option<Selector>, String>,
    pub namespace_selector: Result<Option<Selector>, String>,
}

impl ParsedScorecard {
    pub fn new(scorecard: &Scorecard) -> ParsedScorecard {
        let parsed = serde_json::to_value(&scorecard.spec)
            .map_err(|e| e.to_string())
            .and_then(|spec| pave_score::Scorecard::from_value(spec).map_err(|e| e.to_string()));
        let selector = |s: &Option<LabelSelector>, field: &str| {
            s.clone()
                .map(Selector::try_from)
                .transpose()
                .map_err(|e| format!("spec.{field}: {e}"))
        };
        ParsedScorecard {
            name: scorecard.name_any(),
            primary: scorecard
                .annotations()
                .get(PRIMARY_ANNOTATION)
                .is_some_and(|v| v == "true"),
            generation: scorecard.metadata.generation,
            scorecard: parsed,
            selector: selector(&scorecard.spec.selector, "selector"),
            namespace_selector: selector(&scorecard.spec.namespace_selector, "namespaceSelector"),
        }
    }

    /// Whether the label selectors let this Component be evaluated.
    fn selects(
        &self,
        labels: &BTreeMap<String, String>,
        namespace_labels: &BTreeMap<String, String>,
    ) -> bool {
        let matches = |selector: &Result<Option<Selector>, String>, labels| match selector {
            Ok(None) => true,
            Ok(Some(selector)) => selector.matches(labels),
            Err(_) => false,
        };
        matches(&self.selector, labels) && matches(&self.namespace_selector, namespace_labels)
    }
}

/// Orders scorecards as their scores appear on a Component: primary first, then by name.
pub fn order(scorecards: &mut [std::sync::Arc<ParsedScorecard>]) {
    scorecards.sort_by(|a, b| b.primary.cmp(&a.primary).then_with(|| a.name.cmp(&b.name)));
}

/// What the engine reads of a Component; relation counts come from the catalog.
pub fn entity(component: &Component, view: Option<&EntityView>) -> pave_score::Entity {
    let object = serde_json::to_value(component).unwrap_or_default();
    let mut entity = pave_score::Entity::from_object(&object);
    if let Some(view) = view {
        entity.set_catalog(
            view.relations.iter().map(|r| r.relation.as_str()),
            view.unresolved.len(),
            view.unchecked.len(),
            view.owner_resolved(),
        );
    }
    entity
}

/// One scorecard's result for one Component, with the rule errors the engine met.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub scorecard: String,
    pub evaluation: Evaluation,
}

/// Evaluates `entity` against every scorecard that selects it, in `scorecards` order.
/// `namespace_labels` are the labels of the entity's namespace.
pub fn evaluate(
    entity: &pave_score::Entity,
    scorecards: &[std::sync::Arc<ParsedScorecard>],
    namespace_labels: &BTreeMap<String, String>,
) -> Vec<Outcome> {
    scorecards
        .iter()
        .filter_map(|parsed| {
            let scorecard = parsed.scorecard.as_ref().ok()?;
            if !parsed.selects(&entity.labels, namespace_labels) {
                return None;
            }
            // A filter that cannot be evaluated selects nothing; the Scorecard says why.
            if !pave_score::selects(scorecard, entity).unwrap_or(false) {
                return None;
            }
            Some(Outcome {
                scorecard: parsed.name.clone(),
                evaluation: pave_score::evaluate(scorecard, entity),
            })
        })
        .collect()
}

/// The `status.scores` entries for `outcomes`, keeping `lastChanged` from `current`
/// while the level stays the same.
pub fn scores(outcomes: &[Outcome], current: &[Score], now: Timestamp) -> Vec<Score> {
    outcomes
        .iter()
        .map(|outcome| {
            let e = &outcome.evaluation;
            let before = current.iter().find(|s| s.scorecard == outcome.scorecard);
            let last_changed = match before {
                Some(before) if before.level == e.level => before.last_changed.clone(),
                _ => Some(Time(now)),
            };
            Score {
                scorecard: outcome.scorecard.clone(),
                level: e.level.clone(),
                rules: e
                    .rules
                    .iter()
                    .map(|r| RuleResult {
                        identifier: r.identifier.clone(),
                        passed: r.passed,
                    })
                    .collect(),
                next_level: e.next_level.clone(),
                blocking: e.blocking.clone(),
                last_changed,
            }
        })
        .collect()
}

/// The Scorecard's summary over the outcomes of every Component it evaluated, or
/// `None` when `current` already says it.
pub fn summary<'a>(
    parsed: &ParsedScorecard,
    outcomes: impl Iterator<Item = &'a Outcome>,
    current: &ScorecardStatus,
    now: Timestamp,
) -> Option<ScorecardStatus> {
    let mut problems: Vec<String> = Vec::new();
    let (levels, rules) = match &parsed.scorecard {
        Ok(scorecard) => {
            problems.extend(scorecard.problems().into_iter().map(|p| match p.rule {
                Some(rule) => format!("rule {rule}: {}", p.message),
                None => p.message,
            }));
            let levels: Vec<String> = scorecard.levels.iter().map(|l| l.title.clone()).collect();
            let rules: Vec<String> = scorecard
                .rules
                .iter()
                .map(|r| r.identifier.clone())
                .collect();
            (levels, rules)
        }
        Err(error) => {
            problems.push(format!("cannot read the scorecard: {error}"));
            (vec![], vec![])
        }
    };
    for selector in [&parsed.selector, &parsed.namespace_selector] {
        if let Err(error) = selector {
            problems.push(format!(
                "{error}; the scorecard selects nothing until it is fixed"
            ));
        }
    }
    let mut evaluated = 0i64;
    let mut per_level: BTreeMap<Option<String>, i64> = BTreeMap::new();
    let mut per_rule: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    // Runtime errors, first message per rule, with how many Components hit it.
    let mut errors: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for outcome in outcomes.filter(|o| o.scorecard == parsed.name) {
        evaluated += 1;
        *per_level
            .entry(outcome.evaluation.level.clone())
            .or_insert(0) += 1;
        for rule in &outcome.evaluation.rules {
            let counts = per_rule.entry(rule.identifier.clone()).or_insert((0, 0));
            if rule.passed {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
            if let Some(error) = &rule.error {
                errors
                    .entry(rule.identifier.clone())
                    .or_insert_with(|| (error.clone(), 0))
                    .1 += 1;
            }
        }
    }
    problems.extend(errors.into_iter().map(|(rule, (message, count))| {
        format!("rule {rule}: {message} (on {count} components; it counts as failed)")
    }));
    let mut level_counts: Vec<LevelCount> = levels
        .iter()
        .map(|level| LevelCount {
            level: level.clone(),
            count: per_level.get(&Some(level.clone())).copied().unwrap_or(0),
        })
        .collect();
    level_counts.push(LevelCount {
        level: "none".into(),
        count: per_level.get(&None).copied().unwrap_or(0),
    });
    let rule_rates: Vec<RulePassRate> = rules
        .iter()
        .map(|rule| {
            let (passed, failed) = per_rule.get(rule).copied().unwrap_or((0, 0));
            RulePassRate {
                identifier: rule.clone(),
                passed,
                failed,
            }
        })
        .collect();
    let ready = if problems.is_empty() {
        conditions::new(
            READY,
            Status::True,
            "Evaluated",
            format!("{evaluated} components evaluated"),
            parsed.generation,
            now,
        )
    } else {
        conditions::new(
            READY,
            Status::False,
            "InvalidRule",
            problems.join("; "),
            parsed.generation,
            now,
        )
    };
    let conditions = merged_conditions(&current.conditions, ready);
    let wanted = ScorecardStatus {
        observed_generation: parsed.generation,
        conditions,
        evaluated: Some(evaluated),
        levels: level_counts,
        rules: rule_rates,
    };
    (wanted != *current).then_some(wanted)
}

/// `current`'s Ready replaced by `ready`, keeping its transition time if the status
/// did not change; only Ready is this controller's.
fn merged_conditions(current: &[Condition], ready: Condition) -> Vec<Condition> {
    let mut conditions: Vec<Condition> = current
        .iter()
        .filter(|c| c.type_ == READY)
        .cloned()
        .collect();
    conditions::set(&mut conditions, ready);
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;
    use pave_api::ComponentSpec;
    use std::sync::Arc;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn article_scorecard() -> Arc<ParsedScorecard> {
        let yaml = include_str!("../../../examples/scorecard-service-maturity.yaml");
        let scorecard: Scorecard = serde_yaml::from_str(yaml).unwrap();
        Arc::new(ParsedScorecard::new(&scorecard))
    }

    fn article_component() -> Component {
        let yaml = include_str!("../../../examples/catalog-payment-service.yaml");
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_articles_component_is_basic_and_needs_a_runbook_for_silver() {
        let scorecards = [article_scorecard()];
        let outcomes = evaluate(
            &entity(&article_component(), None),
            &scorecards,
            &BTreeMap::new(),
        );
        let scores = scores(&outcomes, &[], at(10));
        assert_eq!(scores.len(), 1);
        assert_eq!(scores[0].level.as_deref(), Some("Basic"));
        assert_eq!(scores[0].next_level.as_deref(), Some("Silver"));
        assert_eq!(scores[0].blocking, ["has-runbook"]);
        assert_eq!(scores[0].last_changed, Some(Time(at(10))));
        // The same level later keeps its lastChanged.
        let again = super::scores(&outcomes, &scores, at(20));
        assert_eq!(again, scores);
    }

    #[test]
    fn summary_counts_levels_and_rules_and_is_not_rewritten() {
        let parsed = article_scorecard();
        let mut with_runbook = article_component();
        with_runbook.spec.properties = Some(
            serde_json::json!({"runbook_url": "https://r"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let components = [
            article_component(),
            with_runbook,
            Component::new("bare", ComponentSpec::new("service", "production", "team")),
        ];
        let outcomes: Vec<Outcome> = components
            .iter()
            .flat_map(|c| {
                evaluate(
                    &entity(c, None),
                    std::slice::from_ref(&parsed),
                    &BTreeMap::new(),
                )
            })
            .collect();
        let status = summary(&parsed, outcomes.iter(), &ScorecardStatus::default(), at(1)).unwrap();
        assert_eq!(status.evaluated, Some(3));
        let counts: Vec<(&str, i64)> = status
            .levels
            .iter()
            .map(|l| (l.level.as_str(), l.count))
            .collect();
        assert_eq!(
            counts,
            [("Basic", 2), ("Silver", 0), ("Gold", 1), ("none", 0)]
        );
        let runbook = status
            .rules
            .iter()
            .find(|r| r.identifier == "has-runbook")
            .unwrap();
        assert_eq!((runbook.passed, runbook.failed), (1, 2));
        assert_eq!(
            conditions::find(&status.conditions, READY).unwrap().reason,
            "Evaluated"
        );
        assert_eq!(summary(&parsed, outcomes.iter(), &status, at(2)), None);
    }

    #[test]
    fn primary_scorecards_come_first() {
        let mut list: Vec<Arc<ParsedScorecard>> = ["b", "a", "c"]
            .iter()
            .map(|name| {
                Arc::new(ParsedScorecard {
                    name: name.to_string(),
                    primary: *name == "c",
                    generation: None,
                    scorecard: Err("unused".into()),
                    selector: Ok(None),
                    namespace_selector: Ok(None),
                })
            })
            .collect();
        order(&mut list);
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
    }
}
