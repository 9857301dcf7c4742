//! `kubectl pave score`: a scorecard's levels, offline, for pull-request checks before
//! anything reaches a cluster.
//!
//! The scorecard may be a pave Scorecard object or a bare Port scorecard (the
//! article's file as it is); the catalog may be pave objects or Backstage files (read
//! as `kubectl pave import` reads them, Locations included), of every catalog kind.
//! The files given are the catalog: the same graph the operator keeps is built from
//! them, so relations, `$unresolvedRefs`, `$uncheckedRefs` and `$ownerResolved` say
//! what the cluster would say of the same objects. Give the org (Groups and Users)
//! too, and "the owner exists" rules answer offline as in the cluster; leave a
//! Component's dependencies out, and they count as unresolved, as they would be.
//! Only Components are scored.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pave_catalog::Catalog;
use pave_score::{Entity, Evaluation, Scorecard};
use serde::Serialize;

use crate::import;

/// How the results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// One component's result, as `-o json` prints it.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Result {
    pub component: String,
    pub scorecard: String,
    pub level: Option<String>,
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    pub next_level: Option<String>,
    pub blocking: Vec<String>,
}

/// `kubectl pave score --scorecard SC COMPONENT...`.
pub fn run(
    scorecard: &Path,
    components: &[PathBuf],
    format: Format,
    min_level: Option<&str>,
) -> ExitCode {
    match score(scorecard, components, min_level) {
        Ok((results, warnings, below)) => {
            for warning in &warnings {
                eprintln!("{warning}");
            }
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&results).expect("results serialise")
                ),
                Format::Table => print!("{}", table(&results)),
            }
            if below.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "kubectl-pave: {} below {}: {}",
                    if below.len() == 1 {
                        "1 component is"
                    } else {
                        "components are"
                    },
                    min_level.unwrap_or_default(),
                    below.join(", ")
                );
                ExitCode::from(1)
            }
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            ExitCode::from(1)
        }
    }
}

type Scored = (Vec<Result>, Vec<String>, Vec<String>);

/// The results, the warnings, and the components below `min_level`; or every error.
fn score(
    scorecard_file: &Path,
    files: &[PathBuf],
    min_level: Option<&str>,
) -> std::result::Result<Scored, Vec<String>> {
    let scorecard = read_scorecard(scorecard_file).map_err(|e| vec![e])?;
    let name = scorecard
        .identifier
        .clone()
        .unwrap_or_else(|| scorecard_file.display().to_string());
    let mut warnings: Vec<String> = scorecard
        .problems()
        .into_iter()
        .map(|p| match p.rule {
            Some(rule) => format!("{}: rule {rule}: {}", scorecard_file.display(), p.message),
            None => format!("{}: {}", scorecard_file.display(), p.message),
        })
        .collect();
    let rank = |level: &Option<String>| {
        level
            .as_ref()
            .and_then(|l| scorecard.levels.iter().position(|x| &x.title == l))
            .map_or(0, |i| i + 1)
    };
    let minimum = match min_level {
        Some(level) => match scorecard.levels.iter().position(|l| l.title == level) {
            Some(i) => Some(i + 1),
            None => {
                let known: Vec<&str> = scorecard.levels.iter().map(|l| l.title.as_str()).collect();
                return Err(vec![format!(
                    "--min-level {level} is not a level of {name}: its levels are {}",
                    known.join(", ")
                )]);
            }
        },
        None => None,
    };

    let (entities, mut notes) = read_catalog(files)?;
    warnings.append(&mut notes);
    let mut catalog = Catalog::new();
    catalog.defer();
    for entity in &entities {
        let (reference, refs) = entity.catalog_entry(BACKSTAGE_NAMESPACE);
        catalog.upsert(reference, &refs);
    }
    catalog.recompute();
    let mut results = Vec::new();
    let mut below = Vec::new();
    for entity in &entities {
        let import::Entity::Component(component) = entity else {
            continue;
        };
        let object = serde_json::to_value(component).expect("a Component serialises");
        let mut scored = Entity::from_object(&object);
        let (reference, _) = entity.catalog_entry(BACKSTAGE_NAMESPACE);
        if let Some(view) = catalog.view_of(&reference) {
            scored.set_catalog(
                view.relations.iter().map(|r| r.relation.as_str()),
                view.unresolved.len(),
                view.unchecked.len(),
                view.owner_resolved(),
            );
        }
        let entity = scored;
        let label = match &component.metadata.namespace {
            Some(ns) => format!("{ns}/{}", entity.name),
            None => entity.name.clone(),
        };
        match pave_score::selects(&scorecard, &entity) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                warnings.push(format!(
                    "{label}: the scorecard's filter cannot be evaluated: {error}"
                ));
                continue;
            }
        }
        let evaluation = pave_score::evaluate(&scorecard, &entity);
        if minimum.is_some_and(|m| rank(&evaluation.level) < m) {
            below.push(label.clone());
        }
        results.push(result(label, &name, evaluation));
    }
    Ok((results, warnings, below))
}

fn result(component: String, scorecard: &str, evaluation: Evaluation) -> Result {
    let (passed, failed): (Vec<_>, Vec<_>) = evaluation.rules.iter().partition(|r| r.passed);
    Result {
        component,
        scorecard: scorecard.to_owned(),
        level: evaluation.level,
        passed: passed.into_iter().map(|r| r.identifier.clone()).collect(),
        failed: failed.into_iter().map(|r| r.identifier.clone()).collect(),
        next_level: evaluation.next_level,
        blocking: evaluation.blocking,
    }
}

fn read_scorecard(path: &Path) -> std::result::Result<Scorecard, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
    let value: serde_json::Value = serde_yaml::from_str(&text)
        .map_err(|e| format!("{}: not a YAML scorecard: {e}", path.display()))?;
    Scorecard::from_value(value).map_err(|e| format!("{}: {e}", path.display()))
}

/// The namespace of an object that names none: Backstage's default, which is where
/// a reference without a namespace from such an object points.
const BACKSTAGE_NAMESPACE: &str = "default";

/// Every catalog object in `files`: pave objects as they are, Backstage files
/// through the importer (which follows their Locations). Other kinds are noted and
/// left out.
fn read_catalog(
    files: &[PathBuf],
) -> std::result::Result<(Vec<import::Entity>, Vec<String>), Vec<String>> {
    let mut entities = Vec::new();
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    let mut backstage = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(format!("{name}: cannot read it: {e}"));
                continue;
            }
        };
        if !text.contains("platform.pave.dev/") {
            backstage.push(path.clone());
            continue;
        }
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_json::Value = match serde::Deserialize::deserialize(document) {
                Ok(value) => value,
                Err(e) => {
                    errors.push(format!("{name}: {e}"));
                    continue;
                }
            };
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].clone();
            match import::Entity::from_pave_object(value) {
                Ok(entity) => entities.push(entity),
                Err(_) if !matches!(kind.as_str(), Some(k) if CATALOG_KINDS.contains(&k)) => {
                    notes.push(format!("{name}: skipped {kind}: not a catalog kind"));
                }
                Err(e) => errors.push(format!("{name}: not a pave {kind}: {e}")),
            }
        }
    }
    if !backstage.is_empty() {
        let outcome = import::import_files(&backstage, None);
        for diagnostic in &outcome.diagnostics {
            match diagnostic.severity {
                import::Severity::Error => errors.push(diagnostic.to_string()),
                _ => notes.push(diagnostic.to_string()),
            }
        }
        entities.extend(outcome.entities);
    }
    if errors.is_empty() {
        Ok((entities, notes))
    } else {
        Err(errors)
    }
}

/// The kinds a pave file may hold that the catalog reads.
const CATALOG_KINDS: [&str; 7] = [
    "Component",
    "Group",
    "User",
    "System",
    "Domain",
    "API",
    "Resource",
];

/// COMPONENT, LEVEL, FAILED RULES, aligned.
fn table(results: &[Result]) -> String {
    let rows: Vec<[String; 3]> = results
        .iter()
        .map(|r| {
            [
                r.component.clone(),
                r.level.clone().unwrap_or_else(|| "-".into()),
                if r.failed.is_empty() {
                    "-".into()
                } else {
                    r.failed.join(",")
                },
            ]
        })
        .collect();
    let header = [
        "COMPONENT".to_owned(),
        "LEVEL".to_owned(),
        "FAILED RULES".to_owned(),
    ];
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}   {:w1$}   {}",
            row[0],
            row[1],
            row[2],
            w0 = widths[0],
            w1 = widths[1]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
