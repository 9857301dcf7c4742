//! Just enough XML to rewrite moto's query-protocol answers without disturbing them:
//! [`parse`] finds where each element starts and ends in the original text, and
//! [`Edits`] splices replacements into those byte ranges. Everything an edit does not
//! touch stays byte for byte what moto sent, so an answer that needs no rewriting is
//! passed on unchanged and a rewritten one differs only where it must.
//!
//! Not a general XML parser: it reads elements (with attributes, quoted values may
//! hold `>`), text, comments, CDATA, processing instructions and a DOCTYPE without
//! an internal subset, which covers what AWS and moto produce. Anything it cannot
//! read makes [`parse`] answer `None`, and the caller leaves that answer alone.

use std::ops::Range;

/// An element's place in the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Element {
    /// The name as written, prefix included (`DBInstance`, `soap:Body`).
    pub qname: String,
    /// From the `<` of the start tag to just past the end tag (or the `/>`).
    pub span: Range<usize>,
    /// Between the start and end tags; empty, at the end of the tag, for `<a/>`.
    pub inner: Range<usize>,
    /// Written `<a/>`: no end tag to insert before.
    pub self_closing: bool,
    pub children: Vec<Element>,
}

impl Element {
    /// The name without its namespace prefix.
    pub fn name(&self) -> &str {
        self.qname.rsplit(':').next().unwrap_or(&self.qname)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name() == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name() == name)
    }

    /// The descendant reached by following `path`, one child name per level.
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// The text content, entities decoded; only meaningful for a leaf
    /// (`<code>16</code>`).
    pub fn text(&self, doc: &str) -> String {
        unescape(&doc[self.inner.clone()])
    }

    /// The text of the child `name`, if there is one.
    pub fn child_text(&self, doc: &str, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text(doc))
    }
}

/// The document's root element, or `None` if the text is not XML this module reads
/// (the caller then passes the answer on as it is).
pub(super) fn parse(doc: &str) -> Option<Element> {
    let bytes = doc.as_bytes();
    let mut open: Vec<Element> = Vec::new();
    let mut root = None;
    let mut at = 0;
    while let Some(offset) = doc[at..].find('<') {
        let start = at + offset;
        let rest = &doc[start..];
        let skip_to = |end: &str| rest.find(end).map(|i| start + i + end.len());
        at = if rest.starts_with("<?") {
            skip_to("?>")?
        } else if rest.starts_with("<!--") {
            skip_to("-->")?
        } else if rest.starts_with("<![CDATA[") {
            skip_to("]]>")?
        } else if rest.starts_with("<!") {
            let end = skip_to(">")?;
            if doc[start..end].contains('[') {
                return None; // A DOCTYPE with an internal subset.
            }
            end
        } else if let Some(name) = rest.strip_prefix("</") {
            let close = name.find('>')?;
            let mut element = open.pop()?;
            if name[..close].trim_end() != element.qname {
                return None;
            }
            element.inner.end = start;
            element.span.end = start + 2 + close + 1;
            match open.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => root = Some(element),
                None => return None,
            }
            start + 2 + close + 1
        } else {
            let end = tag_end(bytes, start + 1)?;
            let self_closing = bytes[end - 1] == b'/';
            let tag = &doc[start + 1..if self_closing { end - 1 } else { end }];
            let qname = tag
                .split(|c: char| c.is_ascii_whitespace())
                .next()
                .filter(|n| !n.is_empty())?
                .to_owned();
            let element = Element {
                qname,
                span: start..end + 1,
                inner: end + 1..end + 1,
                self_closing,
                children: Vec::new(),
            };
            if self_closing {
                match open.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if root.is_none() => root = Some(element),
                    None => return None,
                }
            } else {
                open.push(element);
            }
            end + 1
        };
    }
    if open.is_empty() { root } else { None }
}

/// The offset of the `>` that ends the tag whose name starts at `from`, skipping
/// quoted attribute values.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, byte) in bytes.iter().enumerate().skip(from) {
        match (quote, byte) {
            (None, b'"' | b'\'') => quote = Some(*byte),
            (Some(q), b) if *b == q => quote = None,
            (None, b'>') => return Some(i),
            (None, b'<') => return None,
            _ => {}
        }
    }
    None
}

/// Decodes the five predefined entities and character references; anything else is
/// kept as written.
pub(super) fn unescape(text: &str) -> String {
    if !text.contains('&') && !text.contains("<![CDATA[") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['&', '<']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(cdata) = rest.strip_prefix("<![CDATA[")
            && let Some(end) = cdata.find("]]>")
        {
            out.push_str(&cdata[..end]);
            rest = &cdata[end + 3..];
            continue;
        }
        let decoded = rest.find(';').and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = match entity.strip_prefix("#x") {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => entity.strip_prefix('#')?.parse().ok(),
                    };
                    char::from_u32(code?)?
                }
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push_str(&rest[..1]);
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text escaped for an element's content.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Replacements of byte ranges of one document, applied together.
#[derive(Debug, Default)]
pub(super) struct Edits(Vec<(Range<usize>, String)>);

impl Edits {
    pub fn replace(&mut self, range: Range<usize>, text: impl Into<String>) {
        self.0.push((range, text.into()));
    }

    pub fn insert(&mut self, at: usize, text: impl Into<String>) {
        self.replace(at..at, text);
    }

    pub fn remove(&mut self, element: &Element) {
        self.replace(element.span.clone(), "");
    }

    /// Sets a leaf element's text (a self-closing one loses its attributes, which no
    /// leaf of an AWS answer has).
    pub fn set_text(&mut self, element: &Element, text: &str) {
        if element.self_closing {
            let qname = &element.qname;
            self.replace(
                element.span.clone(),
                format!("<{qname}>{}</{qname}>", escape(text)),
            );
        } else {
            self.replace(element.inner.clone(), escape(text));
        }
    }

    /// Adds `xml` as the last content of `element`.
    pub fn append(&mut self, doc: &str, element: &Element, xml: &str) {
        if element.self_closing {
            // `<a x="1"/>` becomes `<a x="1">xml</a>`.
            let tag = doc[element.span.start..element.span.end - 2].trim_end();
            let qname = &element.qname;
            self.replace(element.span.clone(), format!("{tag}>{xml}</{qname}>"));
        } else {
            self.insert(element.inner.end, xml);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The document with every edit made. Edits must not overlap (two inserts at one
    /// offset are fine and keep their order); one that does is a bug in the caller,
    /// and panics rather than produce a garbled answer.
    pub fn apply(mut self, doc: &str) -> String {
        self.0.sort_by_key(|(range, _)| (range.start, range.end));
        let mut out = String::with_capacity(doc.len());
        let mut at = 0;
        for (range, text) in self.0 {
            assert!(range.start >= at, "overlapping XML edits at {range:?}");
            out.push_str(&doc[at..range.start]);
            out.push_str(&text);
            at = range.end;
        }
        out.push_str(&doc[at..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- moto -->
<R xmlns="urn:x" a='x>y'><list><item><id>i-1</id><state><code>16</code><name>running</name></state></item>
<item><id>i-2</id><tagSet/><note><![CDATA[<not an element>]]> &amp; &#65;&#x42;</note></item></list><empty></empty></R>
"#;

    #[test]
    fn elements_are_found_where_they_are_written() {
        let root = parse(DOC).unwrap();
        assert_eq!(root.qname, "R");
        let whole = &DOC[root.span.clone()];
        assert!(
            whole.starts_with("<R xmlns") && whole.ends_with("</empty></R>"),
            "{whole}"
        );
        let items: Vec<&Element> = root.child("list").unwrap().children_named("item").collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].child_text(DOC, "id").as_deref(), Some("i-1"));
        assert_eq!(
            items[0].at(&["state", "name"]).unwrap().text(DOC),
            "running"
        );
        let tag_set = items[1].child("tagSet").unwrap();
        assert!(tag_set.self_closing);
        assert_eq!(&DOC[tag_set.span.clone()], "<tagSet/>");
        assert_eq!(
            items[1].child_text(DOC, "note").as_deref(),
            Some("<not an element> & AB")
        );
        assert_eq!(root.child("empty").unwrap().text(DOC), "");
        assert!(root.child("nothing").is_none());
    }

    #[test]
    fn namespace_prefixes_are_ignored_in_names() {
        let doc = "<s:Envelope xmlns:s=\"u\"><s:Body><Id>1</Id></s:Body></s:Envelope>";
        let root = parse(doc).unwrap();
        assert_eq!(root.name(), "Envelope");
        assert_eq!(root.at(&["Body", "Id"]).unwrap().text(doc), "1");
    }

    #[test]
    fn what_is_not_well_formed_is_refused() {
        for bad in [
            "<a><b></a></b>",
            "<a>",
            "<a></a><b></b>",
            "<a x=\"1></a>",
            "<a><!-- never closed </a>",
            "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
            "</a>",
            "<a></a",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(parse("no xml at all").is_none());
    }

    #[test]
    fn edits_change_only_their_ranges() {
        let root = parse(DOC).unwrap();
        let items: Vec<&Element> = root.child("list").unwrap().children_named("item").collect();
        let mut edits = Edits::default();
        edits.set_text(items[0].at(&["state", "code"]).unwrap(), "0");
        edits.set_text(items[0].at(&["state", "name"]).unwrap(), "pending & <new>");
        edits.append(DOC, items[1].child("tagSet").unwrap(), "<item>t</item>");
        edits.append(DOC, root.child("empty").unwrap(), "<x/>");
        assert!(!edits.is_empty());
        let out = edits.apply(DOC);
        assert_eq!(
            out,
            DOC.replace("<code>16</code>", "<code>0</code>")
                .replace("running", "pending &amp; &lt;new&gt;")
                .replace("<tagSet/>", "<tagSet><item>t</item></tagSet>")
                .replace("<empty></empty>", "<empty><x/></empty>")
        );
        // And the result reads back.
        let again = parse(&out).unwrap();
        let first = again.at(&["list", "item", "state", "name"]).unwrap();
        assert_eq!(first.text(&out), "pending & <new>");

        let mut removal = Edits::default();
        removal.remove(items[0]);
        removal.insert(items[1].span.end, "<item>3</item>");
        let out = removal.apply(DOC);
        assert!(!out.contains("i-1") && out.contains("<id>i-2</id>"));
        assert!(out.contains("</item><item>3</item></list>"), "{out}");
        assert_eq!(Edits::default().apply(DOC), DOC);
    }

    #[test]
    #[should_panic(expected = "overlapping XML edits")]
    fn overlapping_edits_are_a_bug() {
        let root = parse(DOC).unwrap();
        let item = root.at(&["list", "item"]).unwrap();
        let mut edits = Edits::default();
        edits.remove(item);
        edits.set_text(item.child("id").unwrap(), "i-9");
        edits.apply(DOC);
    }

    #[test]
    fn self_closing_elements_get_content() {
        let doc = "<a><b x=\"1\" /></a>";
        let root = parse(doc).unwrap();
        let b = root.child("b").unwrap();
        let mut edits = Edits::default();
        edits.append(doc, b, "<c>1</c>");
        assert_eq!(edits.apply(doc), "<a><b x=\"1\"><c>1</c></b></a>");
        let mut edits = Edits::default();
        edits.set_text(b, "t");
        assert_eq!(edits.apply(doc), "<a><b>t</b></a>");
    }
}
