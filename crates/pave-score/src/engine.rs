//! Scoring: which components a scorecard selects, which rules they pass and the level
//! that earns them.
//!
//! Levels are listed lowest first, and a component reaches level L only if it passes
//! every rule of L and of every level below (Port's rule): with Basic < Bronze < Silver
//! < Gold, failing one Bronze rule keeps a component at Basic however many Silver rules
//! it passes. Port forbids rules on the lowest level; pave allows them (the article has
//! them), and a component that fails one has no level at all. When the lowest level
//! has no rules, every selected component has at least that level.
//!
//! A condition that cannot be evaluated (a property of the wrong type) makes its rule
//! fail with the error recorded. Every condition of a query is evaluated, even once the
//! answer is known, so an error is reported whatever the order of the conditions:
//! an erroring rule never passes, even in an `or`.

use serde::Serialize;

use crate::condition::CompiledCondition;
use crate::entity::Entity;
use crate::model::{Combinator, Query, Rule, Scorecard};

/// A component's result on one scorecard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Highest level reached; `None` if not even the lowest.
    pub level: Option<String>,
    /// Every rule, in scorecard order.
    pub rules: Vec<RuleOutcome>,
    /// The level above `level` (the lowest level when `level` is `None`); `None` at the top.
    pub next_level: Option<String>,
    /// Identifiers of failed rules at or below `next_level`: what stands between the
    /// component and the next level, in scorecard order.
    pub blocking: Vec<String>,
}

/// One rule's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleOutcome {
    pub identifier: String,
    /// The level the rule belongs to, as the scorecard names it.
    pub level: String,
    pub passed: bool,
    /// Why the rule could not be evaluated; it then counts as failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A query with its conditions parsed.
#[derive(Clone, Debug)]
struct CompiledQuery<'a> {
    combinator: Combinator,
    conditions: Vec<CompiledCondition<'a>>,
}

impl<'a> CompiledQuery<'a> {
    fn new(query: &'a Query) -> CompiledQuery<'a> {
        CompiledQuery {
            combinator: query.combinator,
            conditions: query.all_conditions().map(CompiledCondition::new).collect(),
        }
    }

    /// `and` of nothing is true, `or` of nothing false; the first error wins.
    fn eval(&self, entity: &Entity) -> Result<bool, String> {
        let mut result = self.combinator == Combinator::And;
        let mut error = None;
        for condition in &self.conditions {
            match condition.eval(entity) {
                Ok(met) => match self.combinator {
                    Combinator::And => result &= met,
                    Combinator::Or => result |= met,
                },
                Err(message) => {
                    error.get_or_insert(message);
                }
            }
        }
        match error {
            Some(message) => Err(message),
            None => Ok(result),
        }
    }
}

#[derive(Clone, Debug)]
struct CompiledRule<'a> {
    rule: &'a Rule,
    /// Index into the scorecard's levels; `None` for a level the scorecard lacks.
    level: Option<usize>,
    query: CompiledQuery<'a>,
}

/// A scorecard with every property path and condition value parsed, ready to score
/// many components. Borrows the scorecard; build one per scorecard per pass:
///
/// ```
/// # use pave_score::{Entity, Scorecard};
/// # let scorecard = Scorecard::from_yaml_str("levels: [{title: Basic}]").unwrap();
/// # let components: Vec<Entity> = vec![Entity::default()];
/// let compiled = scorecard.compile();
/// for entity in &components {
///     if compiled.selects(entity) == Ok(true) {
///         let evaluation = compiled.evaluate(entity);
///         # assert_eq!(evaluation.level.as_deref(), Some("Basic"));
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct CompiledScorecard<'a> {
    scorecard: &'a Scorecard,
    filter: Option<CompiledQuery<'a>>,
    rules: Vec<CompiledRule<'a>>,
}

impl Scorecard {
    /// Parses the scorecard once for scoring many components.
    pub fn compile(&self) -> CompiledScorecard<'_> {
        CompiledScorecard {
            scorecard: self,
            filter: self.filter.as_ref().map(CompiledQuery::new),
            rules: self
                .rules
                .iter()
                .map(|rule| CompiledRule {
                    rule,
                    level: self.level_index(&rule.level),
                    query: CompiledQuery::new(&rule.query),
                })
                .collect(),
        }
    }
}

impl CompiledScorecard<'_> {
    /// Whether the filter selects the entity (true without a filter). A filter that
    /// cannot be evaluated does not select, and says why.
    pub fn selects(&self, entity: &Entity) -> Result<bool, String> {
        match &self.filter {
            None => Ok(true),
            Some(filter) => filter
                .eval(entity)
                .map_err(|message| format!("filter: {message}")),
        }
    }

    /// Evaluates every rule (the filter is the caller's: see `selects`).
    pub fn evaluate(&self, entity: &Entity) -> Evaluation {
        let levels = &self.scorecard.levels;
        // The lowest level with a failed rule; the component reaches the one below it.
        let mut lowest_failed = levels.len();
        let mut outcomes = Vec::with_capacity(self.rules.len());
        for compiled in &self.rules {
            let (passed, error) = match compiled.level {
                // It could never count towards a level; say so rather than score it.
                None => (
                    false,
                    Some(format!(
                        "level {:?} is not one of the scorecard's levels",
                        compiled.rule.level
                    )),
                ),
                Some(_) => match compiled.query.eval(entity) {
                    Ok(passed) => (passed, None),
                    Err(message) => (false, Some(message)),
                },
            };
            if let (false, Some(level)) = (passed, compiled.level) {
                lowest_failed = lowest_failed.min(level);
            }
            outcomes.push(RuleOutcome {
                identifier: compiled.rule.identifier.clone(),
                level: compiled.rule.level.clone(),
                passed,
                error,
            });
        }

        let reached = lowest_failed.checked_sub(1);
        let next = reached.map_or(0, |index| index + 1);
        let title = |index: usize| levels.get(index).map(|level| level.title.clone());
        let blocking = if next < levels.len() {
            self.rules
                .iter()
                .zip(&outcomes)
                .filter(|(compiled, outcome)| {
                    !outcome.passed && compiled.level.is_some_and(|level| level <= next)
                })
                .map(|(_, outcome)| outcome.identifier.clone())
                .collect()
        } else {
            Vec::new()
        };
        Evaluation {
            level: reached.and_then(title),
            rules: outcomes,
            next_level: title(next),
            blocking,
        }
    }
}

/// Whether the scorecard's filter selects the entity (true without a filter). A filter
/// condition that cannot be evaluated (type error) does not select, and returns the error.
pub fn selects(scorecard: &Scorecard, entity: &Entity) -> Result<bool, String> {
    match &scorecard.filter {
        None => Ok(true),
        Some(filter) => CompiledQuery::new(filter)
            .eval(entity)
            .map_err(|message| format!("filter: {message}")),
    }
}

/// Evaluates every rule. Never panics: a rule whose condition cannot be evaluated counts
/// as failed, with `error` set; the other rules still evaluate. To score many
/// components against one scorecard, `Scorecard::compile` once instead.
pub fn evaluate(scorecard: &Scorecard, entity: &Entity) -> Evaluation {
    scorecard.compile().evaluate(entity)
}
