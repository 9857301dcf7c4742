//! One condition: its value checked and converted once for its operator (`Operand`),
//! then applied to each entity's property with Port's meaning and pave's coercions.
//!
//! Type handling, decided here:
//! - numbers compare as numbers, and a string that spells a number is one (`"81" > 80`):
//!   Kubernetes annotations are always strings, Port properties are typed, and the same
//!   scorecard should read both;
//! - `<`, `<=`, `>`, `>=` and `between` compare numbers, or RFC 3339 instants when the
//!   condition's value is a date; two non-date strings are a type error, not a lexical
//!   comparison (Port only allows numbers and dates there);
//! - `=`/`!=` compare by value with the coercion above, and a boolean equals the strings
//!   "true"/"false" (again: annotations); anything else of different types is unequal;
//! - an absent (or null) property makes every comparison false and so every negated
//!   operator (`!=`, `doesNotContains`, `doesNotBeginsWith`, `doesNotEndsWith`, `notIn`)
//!   true, and `isEmpty` true;
//! - a property of a type the operator cannot read (`>` on "high", `beginsWith` on a
//!   number) is an error, never a quiet false, so a scorecard author sees it.

use std::cmp::Ordering;

use serde_json::Value;

use crate::entity::{Entity, Property, parse_property};
use crate::model::{Condition, Operator};
use crate::value::{Instant, Val, loosely_equal, parse_date, parse_number};

/// A scalar condition value, with its number precomputed (numbers and numeric strings).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lit<'a> {
    val: Val<'a>,
    num: Option<f64>,
}

impl<'a> Lit<'a> {
    fn new(value: &'a Value) -> Lit<'a> {
        let val = Val::of(value);
        Lit {
            val,
            num: val.as_number(),
        }
    }
}

/// A point on the line `<`/`between` compare along. Numbers and instants never mix.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub(crate) enum Bound {
    Num(f64),
    Date(Instant),
}

impl Bound {
    fn of(value: &Value) -> Option<Bound> {
        match value {
            Value::Number(n) => n.as_f64().map(Bound::Num),
            Value::String(s) => parse_number(s)
                .map(Bound::Num)
                .or_else(|| parse_date(s).map(Bound::Date)),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Bound::Num(_) => "a number",
            Bound::Date(_) => "a date",
        }
    }
}

/// The condition's value, shaped for its operator.
#[derive(Clone, Debug)]
pub(crate) enum Operand<'a> {
    /// `isEmpty`, `isNotEmpty`.
    Nothing,
    One(Lit<'a>),
    Many(Vec<Lit<'a>>),
    Order(Bound),
    Range(Bound, Bound),
}

/// Checks `value` against what `operator` needs. The messages go into `problems()` and,
/// when such a rule is evaluated anyway, into its error.
pub(crate) fn compile_operand(
    operator: Operator,
    value: Option<&Value>,
) -> Result<Operand<'_>, String> {
    if !operator.needs_value() {
        return Ok(Operand::Nothing);
    }
    let value = match value {
        None | Some(Value::Null) => return Err(format!("\"{operator}\" needs a value")),
        Some(value) => value,
    };
    let got = || describe_json(value);
    match operator {
        Operator::Eq | Operator::Ne => Ok(Operand::One(Lit::new(value))),
        Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
            Bound::of(value).map(Operand::Order).ok_or_else(|| {
                format!(
                    "\"{operator}\" needs a number or an RFC 3339 date as its value, got {}",
                    got()
                )
            })
        }
        Operator::Contains | Operator::DoesNotContain => {
            if is_scalar(value) {
                Ok(Operand::One(Lit::new(value)))
            } else {
                Err(format!(
                    "\"{operator}\" needs a string, number or boolean as its value, got {} (containsAny takes a list)",
                    got()
                ))
            }
        }
        Operator::BeginsWith
        | Operator::DoesNotBeginWith
        | Operator::EndsWith
        | Operator::DoesNotEndWith => match value {
            Value::String(_) => Ok(Operand::One(Lit::new(value))),
            _ => Err(format!(
                "\"{operator}\" needs a string as its value, got {}",
                got()
            )),
        },
        Operator::ContainsAny | Operator::In | Operator::NotIn => {
            let Value::Array(items) = value else {
                return Err(format!(
                    "\"{operator}\" needs an array as its value, got {}",
                    got()
                ));
            };
            if let Some((index, item)) = items.iter().enumerate().find(|(_, v)| !is_scalar(v)) {
                return Err(format!(
                    "\"{operator}\" needs an array of strings, numbers or booleans; element {index} is {}",
                    describe_json(item)
                ));
            }
            Ok(Operand::Many(items.iter().map(Lit::new).collect()))
        }
        Operator::Between => between_operand(value),
        Operator::IsEmpty | Operator::IsNotEmpty => Ok(Operand::Nothing),
    }
}

fn between_operand(value: &Value) -> Result<Operand<'_>, String> {
    let Value::Object(range) = value else {
        return Err(format!(
            "\"between\" needs {{from, to}} as its value, got {}",
            describe_json(value)
        ));
    };
    if range.contains_key("preset") {
        // Presets ("lastWeek") need a clock; the engine is a pure function of its input.
        return Err(
            "\"between\" with a relative date preset is not supported by pave; give {from, to}"
                .to_owned(),
        );
    }
    let bound = |key: &str| -> Result<Bound, String> {
        match range.get(key) {
            None | Some(Value::Null) => Err(format!("\"between\" needs `{key}`")),
            Some(v) => Bound::of(v).ok_or_else(|| {
                format!(
                    "\"between\" needs `{key}` to be a number or an RFC 3339 date, got {}",
                    describe_json(v)
                )
            }),
        }
    };
    let (from, to) = (bound("from")?, bound("to")?);
    if std::mem::discriminant(&from) != std::mem::discriminant(&to) {
        return Err(format!(
            "\"between\" needs `from` and `to` of one kind; `from` is {} and `to` is {}",
            from.kind(),
            to.kind()
        ));
    }
    if from > to {
        return Err("\"between\" has `from` after `to`, so nothing is ever between".to_owned());
    }
    Ok(Operand::Range(from, to))
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A condition ready to apply: property path and operand parsed once.
#[derive(Clone, Debug)]
pub(crate) struct CompiledCondition<'a> {
    source: &'a Condition,
    property: Result<Property<'a>, String>,
    operand: Result<Operand<'a>, String>,
}

impl<'a> CompiledCondition<'a> {
    pub(crate) fn new(source: &'a Condition) -> CompiledCondition<'a> {
        CompiledCondition {
            source,
            property: parse_property(&source.property),
            operand: compile_operand(source.operator, source.value.as_ref()),
        }
    }

    /// Whether `entity` meets the condition; the error names the property, the operator
    /// and what was wrong.
    pub(crate) fn eval(&self, entity: &Entity) -> Result<bool, String> {
        let name = &self.source.property;
        let operator = self.source.operator;
        let property = match &self.property {
            Ok(property) => *property,
            Err(message) => return Err(message.clone()),
        };
        let operand = match &self.operand {
            Ok(operand) => operand,
            Err(message) => return Err(format!("property {name:?}: {message}")),
        };
        let value = entity.resolve(property);
        apply(operator, value, operand).map_err(|needs| {
            format!(
                "property {name:?} is {}, but \"{operator}\" {needs}",
                describe(value)
            )
        })
    }
}

/// The operator's meaning. `Err` carries what the operator needed, for the message.
fn apply(operator: Operator, value: Val<'_>, operand: &Operand<'_>) -> Result<bool, &'static str> {
    use Operator as Op;
    match (operator, operand) {
        (Op::IsEmpty, _) => Ok(value.is_empty()),
        (Op::IsNotEmpty, _) => Ok(!value.is_empty()),
        (Op::Eq, Operand::One(lit)) => Ok(equals(value, lit)),
        (Op::Ne, Operand::One(lit)) => Ok(!equals(value, lit)),
        (Op::Lt | Op::Le | Op::Gt | Op::Ge, Operand::Order(bound)) => {
            let Some(x) = as_bound(value, *bound)? else {
                return Ok(false);
            };
            let ordering = x.partial_cmp(bound);
            Ok(match operator {
                Op::Lt => ordering == Some(Ordering::Less),
                Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
                Op::Gt => ordering == Some(Ordering::Greater),
                _ => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
            })
        }
        (Op::Between, Operand::Range(from, to)) => {
            Ok(as_bound(value, *from)?.is_some_and(|x| *from <= x && x <= *to))
        }
        (Op::Contains, Operand::One(lit)) => contains(value, lit),
        (Op::DoesNotContain, Operand::One(lit)) => contains(value, lit).map(|found| !found),
        (Op::ContainsAny, Operand::Many(lits)) => contains_any(value, lits),
        (Op::BeginsWith, Operand::One(lit)) => affix(value, lit, Affix::Begins),
        (Op::DoesNotBeginWith, Operand::One(lit)) => {
            affix(value, lit, Affix::Begins).map(|found| !found)
        }
        (Op::EndsWith, Operand::One(lit)) => affix(value, lit, Affix::Ends),
        (Op::DoesNotEndWith, Operand::One(lit)) => {
            affix(value, lit, Affix::Ends).map(|found| !found)
        }
        (Op::In, Operand::Many(lits)) => is_in(value, lits),
        (Op::NotIn, Operand::Many(lits)) => is_in(value, lits).map(|found| !found),
        // compile_operand never pairs these; a fallback rather than a panic.
        _ => Err("cannot use this value"),
    }
}

fn equals(value: Val<'_>, lit: &Lit<'_>) -> bool {
    match value {
        Val::Num(x) => lit.num == Some(x),
        _ => match lit.val {
            Val::Num(y) => value.as_number() == Some(y),
            _ => loosely_equal(value, lit.val),
        },
    }
}

/// The property as a point comparable with `like`; `None` when absent.
fn as_bound(value: Val<'_>, like: Bound) -> Result<Option<Bound>, &'static str> {
    match (value, like) {
        (Val::Null, _) => Ok(None),
        (Val::Num(n), Bound::Num(_)) => Ok(Some(Bound::Num(n))),
        (Val::Str(s), Bound::Num(_)) => parse_number(s)
            .map(|n| Some(Bound::Num(n)))
            .ok_or("needs a number (or a string that spells one) to compare with a number"),
        (Val::Str(s), Bound::Date(_)) => parse_date(s)
            .map(|d| Some(Bound::Date(d)))
            .ok_or("needs an RFC 3339 date string to compare with a date"),
        (_, Bound::Num(_)) => {
            Err("needs a number (or a string that spells one) to compare with a number")
        }
        (_, Bound::Date(_)) => Err("needs an RFC 3339 date string to compare with a date"),
    }
}

fn contains(value: Val<'_>, lit: &Lit<'_>) -> Result<bool, &'static str> {
    match (value, lit.val) {
        (Val::Null, _) => Ok(false),
        (Val::Str(s), Val::Str(needle)) => Ok(s.contains(needle)),
        (Val::Str(_), _) => Err("on a string needs a string value"),
        (Val::List(items), _) => Ok(items.any(|item| equals(item, lit))),
        _ => Err("needs a string or an array"),
    }
}

fn contains_any(value: Val<'_>, lits: &[Lit<'_>]) -> Result<bool, &'static str> {
    match value {
        Val::Null => Ok(false),
        Val::List(items) => Ok(items.any(|item| lits.iter().any(|lit| equals(item, lit)))),
        Val::Str(s) => {
            let mut found = false;
            for lit in lits {
                let Val::Str(needle) = lit.val else {
                    return Err("on a string needs a list of strings");
                };
                found |= s.contains(needle);
            }
            Ok(found)
        }
        _ => Err("needs a string or an array"),
    }
}

#[derive(Clone, Copy)]
enum Affix {
    Begins,
    Ends,
}

fn affix(value: Val<'_>, lit: &Lit<'_>, which: Affix) -> Result<bool, &'static str> {
    match (value, lit.val) {
        (Val::Null, _) => Ok(false),
        (Val::Str(s), Val::Str(affix)) => Ok(match which {
            Affix::Begins => s.starts_with(affix),
            Affix::Ends => s.ends_with(affix),
        }),
        _ => Err("needs a string"),
    }
}

fn is_in(value: Val<'_>, lits: &[Lit<'_>]) -> Result<bool, &'static str> {
    match value {
        Val::Null => Ok(false),
        Val::List(items) => Ok(items.any(|item| lits.iter().any(|lit| equals(item, lit)))),
        Val::Object(_) => Err("needs a single value or an array"),
        _ => Ok(lits.iter().any(|lit| equals(value, lit))),
    }
}

/// "a string (\"high\")": the type, and a short look at the value.
fn describe(value: Val<'_>) -> String {
    match value {
        Val::Str(s) => {
            let mut shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                shown.push('…');
            }
            format!("a string ({shown:?})")
        }
        Val::Num(n) => format!("a number ({n})"),
        Val::Bool(b) => format!("a boolean ({b})"),
        other => other.type_name().to_owned(),
    }
}

fn describe_json(value: &Value) -> String {
    describe(Val::of(value))
}
