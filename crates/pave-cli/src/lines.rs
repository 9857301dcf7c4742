//! Where things are in a YAML file: splitting a multi-document file into documents
//! with their line numbers, and finding the line on which a field starts.
//!
//! serde_norway gives positions only for syntax errors, never for the values it
//! parses, yet every message `kubectl pave import` prints must name `FILE:LINE`. So
//! the text is scanned lightly, next to the real parse:
//!
//! - Documents are split at lines that start with `---` or `...`. YAML forbids those
//!   markers at the start of a line inside any scalar, so the split is exact, and each
//!   document is then parsed on its own: a broken document does not hide the problems
//!   of the others, and a parser error's line is the document's first line plus the
//!   line the parser reports.
//! - A field is found by following its path through the block structure: a key is
//!   looked for only among the lines at the indentation of the enclosing block's
//!   first line, and its block is the lines indented deeper (or, for a sequence
//!   written at the key's own indentation, the `- ` lines that follow). Block
//!   scalars cannot fool this, since their lines are always indented deeper than
//!   their key. Flow style (`spec: {owner: x}`) is not followed; a field inside it is
//!   reported at the line of the nearest enclosing field that was found, which is
//!   still the right neighbourhood.

/// One segment of a field's path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A field's path in a document, such as `spec.dependsOn[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    /// The path `a.b.c`.
    pub fn of(keys: &[&str]) -> Self {
        Self(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
    }

    pub fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One document of a multi-document YAML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    /// The document's text, from its `---` line (when it has one) up to the next
    /// document; parsed on its own.
    pub text: &'a str,
    /// The line number in the file of the first line of `text` (1-based).
    pub first_line: usize,
}

/// The file's documents, in order. Stretches holding only comments, blank lines or
/// directives (`%YAML`) are not documents and are left out.
pub fn split_documents(text: &str) -> Vec<Document<'_>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut documents = Vec::new();
    let mut start = 0;
    let mut first_line = 1;
    let mut offset = 0;
    let mut push = |start: usize, end: usize, first_line: usize| {
        let document = Document {
            text: &text[start..end],
            first_line,
        };
        if document.has_content() {
            documents.push(document);
        }
    };
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        if is_marker(line, "---") && offset > start {
            // A start marker begins the next document and belongs to it.
            push(start, offset, first_line);
            start = offset;
            first_line = number;
        }
        offset += line.len();
        if is_marker(line, "...") {
            // An end marker closes this document and belongs to it.
            push(start, offset, first_line);
            start = offset;
            first_line = number + 1;
        }
    }
    push(start, text.len(), first_line);
    documents
}

/// Whether `line` is the document marker `marker`, alone or followed by content.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

/// A line that holds YAML content, with its indentation.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    line: usize,
    indent: usize,
    text: &'a str,
}

impl Entry<'_> {
    fn is_sequence_item(&self) -> bool {
        self.text == "-" || self.text.starts_with("- ")
    }
}

impl<'a> Document<'a> {
    fn has_content(&self) -> bool {
        !self.entries().is_empty()
    }

    /// The lines with content: no blank lines, no comment lines, no directives, and
    /// no bare `---`/`...` markers (content after `--- ` on the same line counts).
    fn entries(&self) -> Vec<Entry<'a>> {
        let mut entries = Vec::new();
        for (index, raw) in self.text.lines().enumerate() {
            let line = self.first_line + index;
            let mut text = raw.trim_end();
            let mut indent = text.len() - text.trim_start_matches(' ').len();
            for marker in ["---", "..."] {
                if is_marker(text, marker) {
                    let rest = &text[marker.len()..];
                    indent = marker.len() + rest.len() - rest.trim_start().len();
                    text = &text[indent..];
                    break;
                }
            }
            let content = text.trim_start();
            if content.is_empty() || content.starts_with('#') || content.starts_with('%') {
                continue;
            }
            entries.push(Entry {
                line,
                indent,
                text: content,
            });
        }
        entries
    }

    /// The line where the document's content starts: where a message about the
    /// document as a whole points.
    pub fn start_line(&self) -> usize {
        self.entries()
            .first()
            .map_or(self.first_line, |entry| entry.line)
    }

    /// The line where the field at `path` starts; when part of the path cannot be
    /// found (flow style, or a field that is absent), the line of the deepest part
    /// that was found, and at worst the document's start.
    pub fn line_of(&self, path: &FieldPath) -> usize {
        let mut block = self.entries();
        let mut line = block.first().map_or(self.first_line, |entry| entry.line);
        for segment in &path.0 {
            let found = match segment {
                Segment::Key(key) => key_block(&block, key),
                Segment::Index(index) => item_block(&block, *index),
            };
            match found {
                Some((at, inner)) => {
                    line = at;
                    block = inner;
                }
                None => break,
            }
        }
        line
    }
}

/// The entry `key:` among `block`'s direct children, and the entries of its value.
fn key_block<'a>(block: &[Entry<'a>], key: &str) -> Option<(usize, Vec<Entry<'a>>)> {
    let indent = block.first()?.indent;
    let position = block
        .iter()
        .position(|entry| entry.indent == indent && starts_with_key(entry.text, key))?;
    let owner = block[position];
    let rest = &block[position + 1..];
    // A sequence may sit at its key's own indentation (`tags:\n- java`).
    let compact_sequence = rest
        .first()
        .is_some_and(|next| next.indent == owner.indent && next.is_sequence_item());
    let inner = rest
        .iter()
        .take_while(|entry| {
            entry.indent > owner.indent
                || (compact_sequence && entry.indent == owner.indent && entry.is_sequence_item())
        })
        .copied()
        .collect();
    Some((owner.line, inner))
}

/// The `index`-th `- ` item among `block`'s direct children, and the entries of its
/// value; content on the dash's own line becomes the first entry, indented as if the
/// dash were a space, so `- url: x` and the `title:` under it are siblings.
fn item_block<'a>(block: &[Entry<'a>], index: usize) -> Option<(usize, Vec<Entry<'a>>)> {
    let indent = block.first()?.indent;
    let position = block
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.indent == indent && entry.is_sequence_item())
        .nth(index)?
        .0;
    let dash = block[position];
    let mut inner = Vec::new();
    let after_dash = &dash.text[1..];
    let content = after_dash.trim_start();
    if !content.is_empty() {
        inner.push(Entry {
            line: dash.line,
            indent: dash.indent + 1 + after_dash.len() - content.len(),
            text: content,
        });
    }
    inner.extend(
        block[position + 1..]
            .iter()
            .take_while(|entry| entry.indent > dash.indent)
            .copied(),
    );
    Some((dash.line, inner))
}

/// Whether `text` starts with the mapping key `key`, plain or quoted.
fn starts_with_key(text: &str, key: &str) -> bool {
    let after = [
        text.strip_prefix(key),
        text.strip_prefix('"')
            .and_then(|t| t.strip_prefix(key))
            .and_then(|t| t.strip_prefix('"')),
        text.strip_prefix('\'')
            .and_then(|t| t.strip_prefix(key))
            .and_then(|t| t.strip_prefix('\'')),
    ];
    after.into_iter().flatten().any(|rest| {
        rest.trim_start()
            .strip_prefix(':')
            .is_some_and(|value| value.is_empty() || value.starts_with(char::is_whitespace))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# a comment before anything
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: a
  description: |
    spec:
      owner: not-this-one
  tags:
  - java
  - payments
  links:
    - url: https://a
      title: A
    - title: B
      url: https://b
spec:
  type: service
  'owner': team-a
  dependsOn: [x, y]
---
# second
--- {apiVersion: v1, kind: X}
...
# trailing comment after an end marker
---
";

    #[test]
    fn documents_are_split_at_markers_and_empty_ones_are_dropped() {
        let documents = split_documents(FILE);
        assert_eq!(documents.len(), 2, "{documents:#?}");
        assert_eq!(documents[0].first_line, 1);
        assert_eq!(documents[0].start_line(), 2);
        assert!(documents[0].text.ends_with("dependsOn: [x, y]\n"));
        assert_eq!(documents[1].first_line, 23);
        assert_eq!(documents[1].start_line(), 23);
        assert_eq!(documents[1].text, "--- {apiVersion: v1, kind: X}\n...\n");
    }

    #[test]
    fn fields_are_found_by_path_not_by_text() {
        let document = &split_documents(FILE)[0];
        let line = |path: FieldPath| document.line_of(&path);
        assert_eq!(line(FieldPath::of(&["metadata", "name"])), 5);
        // The block scalar's `owner:` is not spec's.
        assert_eq!(line(FieldPath::of(&["spec", "owner"])), 19);
        assert_eq!(line(FieldPath::of(&["spec", "type"])), 18);
        assert_eq!(line(FieldPath::of(&["metadata", "tags"]).index(1)), 11);
        let links = FieldPath::of(&["metadata", "links"]);
        assert_eq!(line(links.index(0).key("title")), 14);
        assert_eq!(line(links.index(1).key("url")), 16);
        assert_eq!(line(links.index(1)), 15);
    }

    #[test]
    fn a_field_that_cannot_be_found_points_at_its_nearest_found_parent() {
        let document = &split_documents(FILE)[0];
        // Flow style is not followed.
        let in_flow = FieldPath::of(&["spec", "dependsOn"]).index(1);
        assert_eq!(document.line_of(&in_flow), 20);
        assert_eq!(document.line_of(&FieldPath::of(&["spec", "lifecycle"])), 17);
        assert_eq!(document.line_of(&FieldPath::of(&["nothing"])), 2);
    }

    #[test]
    fn a_key_needs_its_colon() {
        assert!(starts_with_key("owner: x", "owner"));
        assert!(starts_with_key("owner:", "owner"));
        assert!(starts_with_key("\"owner\" : x", "owner"));
        assert!(!starts_with_key("owners: x", "owner"));
        assert!(!starts_with_key("owner:x", "owner"));
    }

    #[test]
    fn paths_print_as_users_write_them() {
        let path = FieldPath::of(&["spec", "dependsOn"]).index(2);
        assert_eq!(path.to_string(), "spec.dependsOn[2]");
    }
}
