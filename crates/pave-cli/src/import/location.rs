//! `kind: Location`: how a Backstage catalog names its other files, and where those
//! files are.
//!
//! A Location's `spec.target` and `spec.targets` are paths relative to the directory
//! of the file the Location is in. pave follows them the way Backstage does, and
//! refuses whatever would let a catalog file make `kubectl pave import` read
//! something the user did not point it at:
//!
//! - Every target must resolve below the *start directory*: the directory of the file
//!   named on the command line that began the chain of Locations. Paths are compared
//!   canonicalised, so neither `..` nor a symlink leaves it.
//! - Absolute paths and URLs (`https://…`, or any target of a Location with
//!   `type: url`) are errors: nothing is fetched, and an absolute path is below the
//!   start directory only by accident. Types other than `file` and `url` (Backstage's
//!   discovery providers) are errors too.
//! - A target that does not exist is an error, unless the Location says
//!   `presence: optional`, as Backstage allows; then it is skipped with a note.
//! - A glob (`./*.yaml`, `./entities/team-?.yaml`) is followed when it is in the last
//!   path segment only, with `globset`'s syntax: it matches the files of that one
//!   directory, in name order, never the Location's own file. A glob in a directory
//!   segment (`./*/catalog-info.yaml`, `./**/x.yaml`) is an error that says so. A
//!   glob that matches nothing is a missing target.
//!
//! Cycles and files read twice are the caller's business (`Importer` in import.rs),
//! since only it knows the chain of Locations being read.

use std::fs;
use std::io;
use std::path::{Component as PathPart, Path, PathBuf};
use std::sync::LazyLock;

use globset::GlobBuilder;
use regex::Regex;
use serde_yaml::{Mapping, Value};

use super::findings::Findings;
use crate::lines::FieldPath;

/// Why a target is not followed, in the words of every such error.
const FILES_ONLY: &str =
    "pave imports only files below the start directory; URL targets are not fetched";

/// A Location's targets, as its spec names them.
#[derive(Debug)]
pub struct Location {
    pub targets: Vec<Target>,
    /// `presence: optional`: a target that is not there is skipped with a note.
    pub optional: bool,
    /// Where the Location starts, for a message about it as a whole.
    pub line: usize,
    pub name: String,
}

/// One target of a Location.
#[derive(Debug)]
pub struct Target {
    pub text: String,
    /// The line of the target's own entry, where every message about it points.
    pub line: usize,
    /// The Location says `type: url`.
    pub url: bool,
}

/// Reads a Location's spec; `None` when none of its targets can be followed.
pub fn read(entity: &Mapping, findings: &mut Findings<'_>) -> Option<Location> {
    let root = FieldPath::default();
    findings.warn_unknown(entity, &root, &["apiVersion", "kind", "metadata", "spec"]);
    let name = entity
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(without a name)")
        .to_owned();
    let spec_path = FieldPath::of(&["spec"]);
    let Some(spec) = findings.mapping(entity.get("spec"), &spec_path) else {
        if !findings.already_wrong(&spec_path) {
            findings.error(
                &root,
                "spec is missing; a Location needs spec.target or spec.targets".to_owned(),
            );
        }
        return None;
    };

    let type_path = spec_path.key("type");
    let url = match findings.string(spec.get("type"), &type_path).as_deref() {
        None | Some("file") => false,
        Some("url") => true,
        Some(other) => {
            findings.error(
                &type_path,
                format!("spec.type {other:?}: pave follows only targets of type file"),
            );
            return None;
        }
    };
    let presence_path = spec_path.key("presence");
    let optional = match findings
        .string(spec.get("presence"), &presence_path)
        .as_deref()
    {
        None | Some("required") => false,
        Some("optional") => true,
        Some(other) => {
            findings.error(
                &presence_path,
                format!("spec.presence {other:?}: expected required or optional"),
            );
            false
        }
    };

    let mut targets = Vec::new();
    let mut push = |findings: &mut Findings<'_>, value: &Value, path: FieldPath| match findings
        .string(Some(value), &path)
    {
        Some(text) if !text.is_empty() => targets.push(Target {
            text,
            line: findings.line(&path),
            url,
        }),
        Some(_) | None if !findings.already_wrong(&path) => {
            findings.error(&path, format!("{path} is empty"));
        }
        _ => {}
    };
    if let Some(target) = spec.get("target").filter(|t| !t.is_null()) {
        push(findings, target, spec_path.key("target"));
    }
    let targets_path = spec_path.key("targets");
    match spec.get("targets") {
        Some(Value::Sequence(items)) => {
            for (index, item) in items.iter().enumerate() {
                push(findings, item, targets_path.index(index));
            }
        }
        // Reports anything else but nothing.
        other => {
            findings.strings(other, &targets_path);
        }
    }
    findings.warn_unknown(spec, &spec_path, &["type", "target", "targets", "presence"]);
    if targets.is_empty() && !findings.has_errors() {
        findings.warning(
            &spec_path,
            format!("Location {name} names no target, so it adds nothing"),
        );
    }
    Some(Location {
        targets,
        optional,
        line: findings.document.start_line(),
        name,
    })
}

/// Where a file read from disk is: what its Locations' targets are relative to, and
/// the start directory they may not leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The path as messages show it and as it is opened: as the command line gave it,
    /// or the Location's own path's directory joined with the target.
    pub shown: PathBuf,
    /// Which file this is, however it was reached.
    pub canonical: PathBuf,
    /// The canonical directory of the command line's file that began the chain.
    pub start: PathBuf,
}

impl Origin {
    /// A file named on the command line. `None` when it cannot be canonicalised: it
    /// cannot be read either, and reading it says why.
    pub fn root(path: &Path) -> Option<Origin> {
        let canonical = fs::canonicalize(path).ok()?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Some(Origin {
            shown: path.to_owned(),
            canonical,
            start: fs::canonicalize(directory).ok()?,
        })
    }

    pub fn name(&self) -> String {
        self.shown.display().to_string()
    }
}

/// Why a target is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// It names no file; `presence: optional` makes this a note.
    Missing(String),
    /// It may not be followed.
    Refused(String),
}

/// The files `target`, in a Location of the file at `from`, names: one, or for a glob
/// every file it matches, in name order.
pub fn resolve(target: &Target, from: &Origin) -> Result<Vec<Origin>, Problem> {
    let text = target.text.as_str();
    if target.url {
        return Err(Problem::Refused(format!(
            "target {text}: the Location has type url; {FILES_ONLY}"
        )));
    }
    if is_url(text) {
        return Err(Problem::Refused(format!(
            "target {text} is a URL; {FILES_ONLY}"
        )));
    }
    if Path::new(text).is_absolute() {
        return Err(Problem::Refused(format!(
            "target {text} is an absolute path; {FILES_ONLY}"
        )));
    }
    let directory = from.shown.parent().unwrap_or(Path::new(""));
    let (dirs, last) = text.rsplit_once('/').unwrap_or(("", text));
    if has_glob(dirs) {
        return Err(Problem::Refused(format!(
            "target {text}: pave follows a glob only in the last path segment \
             (./entities/*.yaml), not in a directory"
        )));
    }
    let paths = if has_glob(last) {
        glob(&tidy(&directory.join(dirs)), last, text)?
            .into_iter()
            .filter(|path| fs::canonicalize(path).ok().as_ref() != Some(&from.canonical))
            .collect()
    } else {
        vec![tidy(&directory.join(text))]
    };
    paths
        .into_iter()
        .map(|shown| below_start(text, shown, from))
        .collect()
}

/// The target's file, once it is known to exist below the start directory.
fn below_start(text: &str, shown: PathBuf, from: &Origin) -> Result<Origin, Problem> {
    let outside = |canonical: &Path| {
        Problem::Refused(format!(
            "target {text} is {}, outside the start directory {}; {FILES_ONLY}",
            canonical.display(),
            from.start.display()
        ))
    };
    let canonical = match fs::canonicalize(&shown) {
        Ok(canonical) => canonical,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Outside is outside whether or not the file is there, so that no answer
            // tells what exists beyond the start directory.
            let directory = shown.parent().and_then(|d| fs::canonicalize(d).ok());
            if let (Some(directory), Some(file)) = (directory, shown.file_name())
                && !directory.starts_with(&from.start)
            {
                return Err(outside(&directory.join(file)));
            }
            return Err(Problem::Missing(format!(
                "target {text} does not exist (there is no {})",
                shown.display()
            )));
        }
        Err(e) => {
            return Err(Problem::Refused(format!(
                "target {text}: cannot read {}: {e}",
                shown.display()
            )));
        }
    };
    if !canonical.starts_with(&from.start) {
        return Err(outside(&canonical));
    }
    if !canonical.is_file() {
        return Err(Problem::Refused(format!(
            "target {text}: {} is not a file",
            shown.display()
        )));
    }
    Ok(Origin {
        shown,
        canonical,
        start: from.start.clone(),
    })
}

/// `scheme:…`, as URLs start; one letter is a Windows drive, not a scheme.
fn is_url(text: &str) -> bool {
    static SCHEME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("^[a-zA-Z][a-zA-Z0-9+.-]+:").unwrap());
    SCHEME.is_match(text)
}

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

/// The files of `directory` whose names match `pattern`, in name order.
fn glob(directory: &Path, pattern: &str, text: &str) -> Result<Vec<PathBuf>, Problem> {
    let matcher = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| Problem::Refused(format!("target {text} is not a glob pave reads: {e}")))?
        .compile_matcher();
    let entries = fs::read_dir(directory).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Problem::Missing(format!(
            "target {text}: the directory {} does not exist",
            directory.display()
        )),
        _ => Problem::Refused(format!(
            "target {text}: cannot list {}: {e}",
            directory.display()
        )),
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| matcher.is_match(name) && directory.join(name).is_file())
        .collect();
    if names.is_empty() {
        return Err(Problem::Missing(format!(
            "target {text} matches no file in {}",
            directory.display()
        )));
    }
    names.sort();
    Ok(names.into_iter().map(|name| directory.join(name)).collect())
}

/// `path` without its `.` segments, as a user would write it.
fn tidy(path: &Path) -> PathBuf {
    let tidy: PathBuf = path
        .components()
        .filter(|part| *part != PathPart::CurDir)
        .collect();
    if tidy.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        tidy
    }
}
