//! `kubectl pave import`: turns a Backstage catalog (`catalog-info.yaml` files and the
//! files their Locations name) into pave manifests, so an existing catalog moves to
//! pave with one command.
//!
//! Every kind of Backstage's core catalog that pave has becomes its pave object:
//! Component, API, Group, User, System, Domain and Resource (see `kinds`), each
//! checked against its own CRD. `kind: Location` produces nothing itself: its targets
//! are followed, depth first, in the order it lists them (see `location` for which
//! targets are refused; a glob such as `./entities/*.yaml` is followed in the last
//! path segment only), and every file is read once, however many Locations name it.
//! A Location that leads back to a file whose Locations are still being followed is a
//! cycle, reported at the target that closes it with the chain of files. Locations are
//! followed only in files read from disk: standard input, and the in-memory sources
//! of [`import`], have no directory for their targets to be relative to, so there a
//! Location is left out with a warning.
//!
//! Every document of every file is read and checked before anything is printed: a
//! manifest stream that stops halfway through would be applied halfway by
//! `kubectl apply -f -`. Problems are reported as `FILE:LINE: message` on stderr, the
//! way compilers do, so editors can jump to them; a file reached through a Location is
//! named by the Location's path joined with the target. Entities of kinds pave does
//! not have (`Template`, `AiResource`, …) are skipped with a note, and Backstage
//! fields pave has no place for are dropped with a warning; neither fails the import.
//!
//! `--namespace` puts every object into one namespace, and so points every reference
//! that names a namespace at that one too (`group:default/team-a` becomes
//! `group:NS/team-a`): the entity it names, if it is imported along, is there now.
//!
//! The output is built from `pave_api`'s own types and checked against the CRD those
//! types generate (see `checks`), so whatever is printed is what the API server
//! accepts.

mod checks;
mod findings;
mod kinds;
mod location;
mod metadata;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;

use regex::Regex;
use serde_yaml::Value;

use crate::lines::{Document, split_documents};
use findings::{Finding, Findings};
pub use kinds::Entity;
use kinds::{Kinds, Read};
use location::{Location, Origin, Problem};

/// How the file `-` (standard input) is named in messages.
const STDIN_NAME: &str = "<stdin>";

/// One input file: its name as messages show it, and its text or why it could not be
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: Result<String, String>,
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The input is wrong; nothing is printed and the command fails.
    Error,
    /// Something was dropped; the import goes on.
    Warning,
    /// Worth knowing, nothing lost: an entity of a kind pave does not have was left
    /// out, or a value was kept as written; the import goes on.
    Note,
}

/// A message about one place in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; `None` when the message is about the file as a whole.
    pub line: Option<usize>,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        let prefix = match self.severity {
            Severity::Warning => "warning: ",
            Severity::Error | Severity::Note => "",
        };
        write!(f, " {prefix}{}", self.message)
    }
}

/// What an import produced: the objects, in the order their files were read, and
/// every diagnostic.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub entities: Vec<Entity>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Outcome {
    /// How many errors there are; any at all means nothing may be printed.
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// What `kubectl pave import` prints: the manifests, or nothing at all when there
    /// is an error anywhere.
    pub fn manifests(&self) -> Option<String> {
        (self.errors() == 0).then(|| to_yaml(&self.entities))
    }
}

/// `kubectl pave import`: reads `files` (`-` is standard input) and the files their
/// Locations name, prints the manifests on stdout only when the whole input is valid,
/// and every diagnostic on stderr.
pub fn run(files: &[impl AsRef<Path>], namespace: Option<&str>) -> ExitCode {
    let outcome = import_files(files, namespace);
    let mut stderr = io::stderr().lock();
    for diagnostic in &outcome.diagnostics {
        // Nothing better to do when stderr itself is gone.
        let _ = writeln!(stderr, "{diagnostic}");
    }
    let Some(manifests) = outcome.manifests() else {
        let errors = outcome.errors();
        let _ = writeln!(
            stderr,
            "kubectl-pave: {errors} error{} in the input; no manifests were printed",
            if errors == 1 { "" } else { "s" }
        );
        return ExitCode::FAILURE;
    };
    match io::stdout().lock().write_all(manifests.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        // `kubectl pave import x | head` is not an error worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(stderr, "kubectl-pave: writing to stdout failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_stdin() -> Source {
    let mut text = String::new();
    let text = io::stdin()
        .read_to_string(&mut text)
        .map(|_| text)
        .map_err(|e| format!("cannot read standard input: {e}"));
    Source {
        name: STDIN_NAME.to_owned(),
        text,
    }
}

fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))
}

/// Checks `--namespace` when the command line is parsed, so a bad one fails at once.
pub fn parse_namespace(namespace: &str) -> Result<String, String> {
    match checks::namespace_problem(namespace) {
        None => Ok(namespace.to_owned()),
        Some(problem) => Err(problem),
    }
}

/// The manifests, as one YAML stream of documents separated by `---`.
pub fn to_yaml(entities: &[Entity]) -> String {
    entities
        .iter()
        .map(|e| serde_yaml::to_string(e).expect("a pave object always serialises to YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Imports the Backstage entities of `sources`, which are not files on disk (a
/// repository's file at a commit, standard input): their Locations are left out with
/// a warning. `namespace`, when given, replaces every object's namespace.
pub fn import(sources: &[Source], namespace: Option<&str>) -> Outcome {
    let mut importer = Importer::new(namespace);
    for source in sources {
        importer.file(&source.name, source.text.as_deref(), None);
    }
    importer.finish()
}

/// Imports the Backstage entities of `files` (`-` is standard input) and of every file
/// their Locations name. `namespace`, when given, replaces every object's namespace.
pub fn import_files(files: &[impl AsRef<Path>], namespace: Option<&str>) -> Outcome {
    let mut importer = Importer::new(namespace);
    for file in files {
        let path = file.as_ref();
        if path == Path::new("-") {
            let source = read_stdin();
            importer.file(&source.name, source.text.as_deref(), None);
            continue;
        }
        match Origin::root(path) {
            Some(origin) => importer.origin(origin),
            None => importer.file(
                &path.display().to_string(),
                read_file(path).as_deref(),
                None,
            ),
        }
    }
    importer.finish()
}

/// One import: what it has made so far, and where in the chain of Locations it is.
struct Importer<'a> {
    namespace: Option<&'a str>,
    kinds: Kinds,
    entities: Vec<Entity>,
    diagnostics: Vec<Diagnostic>,
    /// Two objects of one kind with one name would silently overwrite each other on
    /// apply: where each was first defined.
    defined: HashMap<(&'static str, Option<String>, String), (String, usize)>,
    /// Every file read so far (canonical paths), so that each is read once.
    read: HashSet<PathBuf>,
    /// The files whose Locations are being followed, outermost first.
    chain: Vec<Origin>,
}

impl<'a> Importer<'a> {
    fn new(namespace: Option<&'a str>) -> Self {
        Importer {
            namespace,
            kinds: Kinds::new(),
            entities: Vec::new(),
            diagnostics: Vec::new(),
            defined: HashMap::new(),
            read: HashSet::new(),
            chain: Vec::new(),
        }
    }

    fn finish(self) -> Outcome {
        Outcome {
            entities: self.entities,
            diagnostics: self.diagnostics,
        }
    }

    fn diagnostic(&mut self, file: &str, line: Option<usize>, severity: Severity, message: String) {
        self.diagnostics.push(Diagnostic {
            file: file.to_owned(),
            line,
            severity,
            message,
        });
    }

    /// Reads a file from disk, unless it was read already.
    fn origin(&mut self, origin: Origin) {
        if !self.read.insert(origin.canonical.clone()) {
            return;
        }
        let text = read_file(&origin.shown);
        self.chain.push(origin.clone());
        self.file(&origin.name(), text.as_deref(), Some(&origin));
        self.chain.pop();
    }

    /// Imports every document of one file; `origin` is where it is on disk, if it is.
    fn file(&mut self, name: &str, text: Result<&str, &String>, origin: Option<&Origin>) {
        let text = match text {
            Ok(text) => text,
            Err(problem) => {
                self.diagnostic(name, None, Severity::Error, problem.clone());
                return;
            }
        };
        let documents = split_documents(text);
        if documents.is_empty() {
            self.diagnostic(
                name,
                None,
                Severity::Warning,
                "no YAML documents in this file".to_owned(),
            );
        }
        for document in &documents {
            let (read, mut findings) = self.document(document);
            let location = match read {
                Read::Entity(entity) => {
                    if let Some(duplicate) = self.define(&entity, name, document.start_line()) {
                        findings.push(duplicate);
                    } else {
                        self.entities.push(*entity);
                    }
                    None
                }
                Read::Location(location) => Some(location),
                Read::Nothing => None,
            };
            findings.sort_by_key(|f| f.line);
            for finding in findings {
                self.diagnostic(name, Some(finding.line), finding.severity, finding.message);
            }
            // Depth first: the files a Location names come before the documents after it.
            if let Some(location) = location {
                self.follow(name, &location, origin);
            }
        }
    }

    /// Reads one document: what it holds if it is valid, and what was found.
    fn document(&self, document: &Document<'_>) -> (Read, Vec<Finding>) {
        let mut findings = Findings::new(document);
        let read = match serde_yaml::from_str::<Value>(document.text) {
            Ok(value) => kinds::document(&value, self.namespace, &self.kinds, &mut findings),
            Err(error) => {
                let line = error.location().map_or(document.start_line(), |l| {
                    document.first_line + l.line() - 1
                });
                findings.list.push(Finding {
                    line,
                    severity: Severity::Error,
                    message: format!(
                        "not valid YAML: {}",
                        in_file_lines(&error.to_string(), document.first_line)
                    ),
                });
                Read::Nothing
            }
        };
        let read = match read {
            Read::Entity(_) if findings.has_errors() => Read::Nothing,
            read => read,
        };
        (read, findings.list)
    }

    /// Records where `entity` is defined; the error if an object of its kind and name
    /// was defined before.
    fn define(&mut self, entity: &Entity, file: &str, line: usize) -> Option<Finding> {
        let meta = entity.metadata();
        let key = (
            entity.kind(),
            meta.namespace.clone(),
            meta.name.clone().unwrap_or_default(),
        );
        if let Some((first_file, first_line)) = self.defined.get(&key) {
            let name = match &key.1 {
                Some(namespace) => format!("{namespace}/{}", key.2),
                None => key.2.clone(),
            };
            return Some(Finding {
                line,
                severity: Severity::Error,
                message: format!(
                    "{} {name} is already defined at {first_file}:{first_line}",
                    key.0
                ),
            });
        }
        self.defined.insert(key, (file.to_owned(), line));
        None
    }

    /// Imports the files a Location in `file` names, each where it stands in the
    /// Location's list.
    fn follow(&mut self, file: &str, location: &Location, origin: Option<&Origin>) {
        let Some(origin) = origin else {
            if !location.targets.is_empty() {
                self.diagnostic(
                    file,
                    Some(location.line),
                    Severity::Warning,
                    format!(
                        "Location {}: its targets are not followed, since {file} is not a \
                         file on disk to resolve them from; import the file by its path",
                        location.name
                    ),
                );
            }
            return;
        };
        for target in &location.targets {
            let line = Some(target.line);
            let found = match location::resolve(target, origin) {
                Ok(found) => found,
                Err(Problem::Missing(message)) if location.optional => {
                    let message = format!("{message}; skipped, as presence: optional allows");
                    self.diagnostic(file, line, Severity::Note, message);
                    continue;
                }
                Err(Problem::Missing(message) | Problem::Refused(message)) => {
                    self.diagnostic(file, line, Severity::Error, message);
                    continue;
                }
            };
            for next in found {
                if let Some(at) = self
                    .chain
                    .iter()
                    .position(|o| o.canonical == next.canonical)
                {
                    let cycle: Vec<String> = self.chain[at..]
                        .iter()
                        .chain([&next])
                        .map(Origin::name)
                        .collect();
                    let message = format!(
                        "target {} closes a cycle of Locations: {}",
                        target.text,
                        cycle.join(" → ")
                    );
                    self.diagnostic(file, line, Severity::Error, message);
                    continue;
                }
                // A file that two Locations name (a diamond) is read at the first.
                self.origin(next);
            }
        }
    }
}

/// The parser's message with its `line N` positions, which count from the start of
/// the document, turned into lines of the file.
fn in_file_lines(message: &str, first_line: usize) -> String {
    static LINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bline (\d+)").unwrap());
    LINE.replace_all(message, |captures: &regex::Captures<'_>| {
        let line: usize = captures[1].parse().unwrap_or(1);
        format!("line {}", first_line + line - 1)
    })
    .into_owned()
}

#[cfg(test)]
mod tests;
