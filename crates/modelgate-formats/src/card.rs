//! Model-card metadata: the YAML front matter of a Hugging Face `README.md` (`license`,
//! `base_model`, `datasets`, `pipeline_tag`, `language`, `library_name`, `tags`).
//!
//! Only for the BOM, never for a verdict, so a small, bounded reader of the subset model cards
//! use — top-level `key: value`, `key: [a, b]` and block lists (`- a`) of scalars — instead of a
//! YAML parser. Anything else (nested maps such as `model-index`) is skipped.

use serde::Serialize;

/// What a model card's front matter says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CardMetadata {
    /// `license` (as written: Hugging Face ids such as `apache-2.0`, or `other`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// `license_name`, for `license: other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_name: Option<String>,
    /// `base_model`: the models this one was fine-tuned, quantized or merged from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub base_models: Vec<String>,
    /// `datasets`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
    /// `pipeline_tag`: the task (`text-generation`, `image-classification`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_tag: Option<String>,
    /// `language` (ISO 639 codes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// `library_name` (`transformers`, `gguf`, `sentence-transformers`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library_name: Option<String>,
    /// `tags`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

const MAX_ITEMS: usize = crate::limits::Limits::CARD_ITEMS;
const MAX_VALUE: usize = crate::limits::Limits::CARD_VALUE_BYTES;
const MAX_LINES: usize = crate::limits::Limits::CARD_LINES;

/// The front matter of a document that starts with `---`, if it names any of the keys above.
pub(crate) fn front_matter(text: &str) -> Option<CardMetadata> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    if lines.next()?.trim_end() != "---" {
        return None;
    }
    let mut card = CardMetadata::default();
    let mut found = false;
    let mut list: Option<&str> = None; // the key whose block list is being read
    for line in lines.take(MAX_LINES) {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return found.then_some(card);
        }
        if trimmed.trim_start().starts_with('#') || trimmed.trim().is_empty() {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if let Some(item) =
            trimmed.trim_start().strip_prefix("- ").or_else(|| (trimmed.trim_start() == "-").then_some(""))
            && (indented || list.is_some())
        {
            if let Some(key) = list {
                found |= push(&mut card, key, item);
            }
            continue;
        }
        if indented {
            continue; // inside a nested map we do not read
        }
        list = None;
        let Some((key, value)) = trimmed.split_once(':') else { continue };
        let key = key.trim();
        let value = value.trim();
        if value.is_empty() {
            list = Some(match key {
                "license" | "base_model" | "datasets" | "language" | "tags" => key_name(key),
                _ => continue,
            });
            continue;
        }
        if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            for item in inner.split(',') {
                found |= push(&mut card, key, item);
            }
        } else {
            found |= push(&mut card, key, value);
        }
    }
    None // no closing `---`: not front matter
}

fn key_name(key: &str) -> &'static str {
    match key {
        "license" => "license",
        "base_model" => "base_model",
        "datasets" => "datasets",
        "language" => "language",
        _ => "tags",
    }
}

/// Records one scalar for `key`; true if the key is one we keep.
fn push(card: &mut CardMetadata, key: &str, raw: &str) -> bool {
    let value = unquote(raw.trim());
    if value.is_empty() || value.len() > MAX_VALUE || value.contains(['\n', '\r']) {
        return matches!(key, "license" | "base_model" | "datasets" | "language" | "tags");
    }
    let add = |list: &mut Vec<String>| {
        if list.len() < MAX_ITEMS && !list.iter().any(|v| v == value) {
            list.push(value.to_string());
        }
    };
    match key {
        "license" => add(&mut card.licenses),
        "license_name" => card.license_name = Some(value.to_string()),
        "base_model" => add(&mut card.base_models),
        "datasets" => add(&mut card.datasets),
        "pipeline_tag" => card.pipeline_tag = Some(value.to_string()),
        "language" => add(&mut card.languages),
        "library_name" => card.library_name = Some(value.to_string()),
        "tags" => add(&mut card.tags),
        _ => return false,
    }
    true
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    // A trailing comment.
    v.split(" #").next().unwrap_or(v).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_keys_model_cards_use() {
        let text = "---\nlicense: apache-2.0\nbase_model: meta-llama/Llama-3.1-8B  # the base\ndatasets:\n- HuggingFaceH4/ultrachat_200k\n  - 'Open-Orca/SlimOrca'\nlanguage: [en, \"fr\"]\npipeline_tag: text-generation\nlibrary_name: transformers\nmodel-index:\n- name: x\n  results:\n  - task: {type: y}\ntags:\n  - trl\n  - sft\n---\n# Model card\nlicense: not this\n";
        let card = front_matter(text).unwrap();
        assert_eq!(card.licenses, ["apache-2.0"]);
        assert_eq!(card.base_models, ["meta-llama/Llama-3.1-8B"]);
        assert_eq!(card.datasets, ["HuggingFaceH4/ultrachat_200k", "Open-Orca/SlimOrca"]);
        assert_eq!(card.languages, ["en", "fr"]);
        assert_eq!(card.pipeline_tag.as_deref(), Some("text-generation"));
        assert_eq!(card.library_name.as_deref(), Some("transformers"));
        assert_eq!(card.tags, ["trl", "sft"]);
    }

    #[test]
    fn not_front_matter() {
        assert_eq!(front_matter("# Title\nlicense: mit\n"), None);
        assert_eq!(front_matter("---\nlicense: mit\n"), None, "never closed");
        assert_eq!(front_matter("---\ntitle: a post\n---\n"), None, "no model-card key");
    }

    #[test]
    fn bounded() {
        let mut text = String::from("---\ntags:\n");
        for i in 0..10_000 {
            text.push_str(&format!("- t{i}\n"));
        }
        text.push_str("---\n");
        // Longer than MAX_LINES: never closed within the bound, so not read at all.
        assert_eq!(front_matter(&text), None);
        let mut text = String::from("---\ntags:\n");
        for i in 0..1000 {
            text.push_str(&format!("- t{i}\n"));
        }
        text.push_str("---\n");
        assert_eq!(front_matter(&text).unwrap().tags.len(), MAX_ITEMS);
        let long = format!("---\nlicense: {}\n---\n", "x".repeat(10_000));
        assert_eq!(front_matter(&long).unwrap().licenses.len(), 0);
    }
}
