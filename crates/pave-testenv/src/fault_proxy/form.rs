//! The AWS query protocol's request parameters: `application/x-www-form-urlencoded`
//! pairs (`Action=TerminateInstances&InstanceId.1=i-1&InstanceId.2=i-2`), with lists
//! flattened into numbered names. Decoded here once, so the request log can show
//! which resources a call named and the slow states can tell which resource a call
//! acts on.

/// Decodes `a=1&b=x+y%21` into `[("a", "1"), ("b", "x y!")]`, in order. `+` is a
/// space and `%XX` a byte (the form encoding the SDKs use); a `%` not followed by
/// two hex digits is kept as it is, and bytes that are not UTF-8 become U+FFFD, so a
/// malformed body is still logged rather than lost.
pub(super) fn decode(form: &[u8]) -> Vec<(String, String)> {
    form.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (unescape(name), unescape(value))
        })
        .collect()
}

fn unescape(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// The values of the list `prefix` (`InstanceId` → `InstanceId.1`, `InstanceId.2`,
/// …) in index order, whatever order the pairs came in. Names with more after the
/// index (`Filter.1.Name`) are not members: ask for `Filter.1.Value` for those.
pub(super) fn list<'a>(params: &'a [(String, String)], prefix: &str) -> Vec<&'a str> {
    let mut members: Vec<(u64, &str)> = params
        .iter()
        .filter_map(|(name, value)| {
            let index = name.strip_prefix(prefix)?.strip_prefix('.')?;
            Some((index.parse().ok()?, value.as_str()))
        })
        .collect();
    members.sort_by_key(|(index, _)| *index);
    members.into_iter().map(|(_, value)| value).collect()
}

/// The first value of `name`.
pub(super) fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus_and_keeps_what_is_malformed() {
        assert_eq!(
            decode(b"Action=DescribeVpcs&Filter.1.Name=tag%3Apave.dev%2Fname&Msg=a+b%20c&Bad=100%&Odd=%zz&Flag&=v"),
            [
                ("Action", "DescribeVpcs"),
                ("Filter.1.Name", "tag:pave.dev/name"),
                ("Msg", "a b c"),
                ("Bad", "100%"),
                ("Odd", "%zz"),
                ("Flag", ""),
                ("", "v"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert_eq!(decode(b"K=%E2%86%92&L=%FF")[0].1, "→");
        assert_eq!(decode(b"K=%E2%86%92&L=%FF")[1].1, "\u{FFFD}");
        assert_eq!(decode(b""), []);
        assert_eq!(decode(b"A=%4"), [("A".to_owned(), "%4".to_owned())]);
    }

    #[test]
    fn lists_come_in_index_order_and_exclude_nested_names() {
        let params = decode(
            b"InstanceId.2=i-b&InstanceId.10=i-j&InstanceId.1=i-a&InstanceIdX.1=no&InstanceId.1.Extra=no",
        );
        assert_eq!(list(&params, "InstanceId"), ["i-a", "i-b", "i-j"]);
        assert_eq!(get(&params, "InstanceId.2"), Some("i-b"));
        assert_eq!(get(&params, "Nope"), None);
    }
}
