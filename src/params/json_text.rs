//! JSON text to a [`Value`], noting every member name that appears twice in
//! one object. A plain parse keeps the last of the two values and drops the
//! first without a word; in a workflow template that can be a whole list of
//! policies gone, so each repeat is reported where it is.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use crate::params::problems::Pointer;

/// Parses `text`; the pointers of repeated members come back beside the
/// value, which holds the last of each.
pub fn parse(text: &str) -> Result<(Value, Vec<Pointer>), serde_json::Error> {
    let repeats = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Node {
        path: &Path::Root,
        repeats: &repeats,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((value, repeats.into_inner().into_iter().flatten().collect()))
}

/// Where a value sits, kept on the stack and turned into a [`Pointer`]
/// only for a repeat, so that a parse allocates nothing for paths.
enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    fn pointer(&self) -> Pointer {
        match self {
            Path::Root => Pointer::root(),
            Path::Key(parent, key) => parent.pointer().key(key),
            Path::Index(parent, i) => parent.pointer().index(*i),
        }
    }
}

struct Node<'p, 'r> {
    path: &'p Path<'p>,
    /// In the order found; `None` once the value it was found in is dropped.
    repeats: &'r RefCell<Vec<Option<Pointer>>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let path = Path::Index(self.path, items.len());
            let node = Node {
                path: &path,
                repeats: self.repeats,
            };
            match seq.next_element_seed(node)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        // Where the repeats found inside a member's value lie, for members
        // whose value had any. When the member comes again its earlier value
        // is dropped, and so are they: they name places the document no
        // longer has.
        let mut inside: BTreeMap<String, Range<usize>> = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let start = self.repeats.borrow().len();
            let value = map.next_value_seed(Node {
                path: &Path::Key(self.path, &key),
                repeats: self.repeats,
            })?;
            let end = self.repeats.borrow().len();
            let had_repeats = end > start;
            // One search per member: a valid batch has tens of thousands.
            match members.entry(key) {
                Entry::Vacant(slot) => {
                    if had_repeats {
                        inside.insert(slot.key().clone(), start..end);
                    }
                    slot.insert(value);
                }
                Entry::Occupied(mut slot) => {
                    let mut repeats = self.repeats.borrow_mut();
                    if let Some(dropped) = inside.remove(slot.key()) {
                        repeats[dropped].fill(None);
                    }
                    repeats.push(Some(self.path.pointer().key(slot.key())));
                    if had_repeats {
                        inside.insert(slot.key().clone(), start..end);
                    }
                    slot.insert(value);
                }
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(text: &str) -> Vec<String> {
        let (_, repeats) = parse(text).unwrap();
        repeats.iter().map(|p| p.as_str().to_owned()).collect()
    }

    #[test]
    fn parses_like_serde_json() {
        let text = r#"{"a":[1,-2,3.5,"x",true,null,{"b":{}}],"c/d":"~","e":18446744073709551615}"#;
        let (value, repeats) = parse(text).unwrap();
        assert_eq!(value, serde_json::from_str::<Value>(text).unwrap());
        assert!(repeats.is_empty());
    }

    #[test]
    fn every_repeated_member_is_named_by_its_pointer() {
        assert_eq!(pointers(r#"{"posts":[],"posts":[1]}"#), ["/posts"]);
        assert_eq!(
            pointers(r#"{"x":{"a~/b":1,"a~/b":2,"a~/b":3},"l":[{},{"id":1,"id":2}]}"#),
            ["/x/a~0~1b", "/x/a~0~1b", "/l/1/id"]
        );
    }

    #[test]
    fn repeats_inside_a_dropped_value_are_not_named() {
        // Only the last "patches" is kept, so "/patches/1/id" names nothing.
        assert_eq!(
            pointers(r#"{"patches":[{},{"id":1,"id":2}],"patches":[{"id":3}]}"#),
            ["/patches"]
        );
        // Nor does "/a/b" name a repeat: the kept "a" has one "b".
        assert_eq!(
            pointers(r#"{"a":{"b":1,"b":2},"a":{"b":3},"a":{"c":{"d":1,"d":2}}}"#),
            ["/a", "/a/c/d", "/a"]
        );
        assert_eq!(
            pointers(r#"{"x":[{"a":{"b":1,"b":2},"a":1}],"x":[{"b":1,"b":2}]}"#),
            ["/x/0/b", "/x"]
        );
    }

    #[test]
    fn the_last_value_is_kept() {
        let (value, _) = parse(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(value, json!({"a": 2}));
    }

    #[test]
    fn malformed_text_and_trailing_text_are_errors() {
        assert!(parse(r#"{"a":1"#).is_err());
        assert!(parse(r#"{"a":1} x"#).is_err());
        assert!(parse(&"[".repeat(10_000)).is_err());
    }
}
