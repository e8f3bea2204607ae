//! JSON documents parsed into `serde_json::Value` with a bound on the number of values.
//!
//! A `Value` costs tens of bytes however small its text: `[0,0,0,…]` of 60 MB becomes 31 million
//! values and a gigabyte of memory, from a zip member that compresses to 60 KB. Real documents
//! (Keras configs, skops schemas, Hugging Face configs) hold thousands to a few hundred thousand
//! values, so [`MAX_VALUES`] bounds memory without turning any of them away. Nesting stays
//! bounded by serde_json's own recursion limit (128).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::Cell;

/// [`Limits::JSON_VALUES`](crate::Limits::JSON_VALUES)
pub(crate) const MAX_VALUES: usize = crate::limits::Limits::JSON_VALUES;

/// What the error says when the bound is hit (callers turn it into a limit note).
const TOO_MANY: &str = "more JSON values than modelgate parses in one document";

/// Parses `text` into a `Value` of at most `max` values.
pub(crate) fn from_str(text: &str, max: usize) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let left = Cell::new(max);
    let value = Seed { left: &left }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Parses `data` into a `Value` of at most `max` values.
pub(crate) fn from_slice(data: &[u8], max: usize) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(data);
    let left = Cell::new(max);
    let value = Seed { left: &left }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// True when `e` is the bound of this module rather than bad JSON.
pub(crate) fn is_too_many(e: &serde_json::Error) -> bool {
    e.to_string().contains(TOO_MANY)
}

/// Deserializes one value, counting it (and everything in it) against `left`.
#[derive(Clone, Copy)]
pub(crate) struct Seed<'a> {
    pub(crate) left: &'a Cell<usize>,
}

impl Seed<'_> {
    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.left.get() {
            0 => Err(E::custom(TOO_MANY)),
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.take()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_serde_json_within_the_bound() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "a": 2, "c": 18446744073709551615}"#;
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_str(text, 100).unwrap(), expected);
        assert_eq!(from_slice(text.as_bytes(), 100).unwrap(), expected);
    }

    #[test]
    fn the_bound_counts_every_value() {
        // 1 array + 3 numbers.
        assert!(from_str("[1, 2, 3]", 4).is_ok());
        let e = from_str("[1, 2, 3]", 3).unwrap_err();
        assert!(is_too_many(&e), "{e}");
        let e = from_str("[1, 2", 100).unwrap_err();
        assert!(!is_too_many(&e));
        assert!(from_str("[1] x", 100).is_err(), "trailing characters are an error");
    }

    #[test]
    fn a_flood_of_tiny_values_stops_at_the_bound() {
        let text = format!("[{}0]", "0,".repeat(MAX_VALUES + 10));
        let e = from_str(&text, MAX_VALUES).unwrap_err();
        assert!(is_too_many(&e));
    }
}
