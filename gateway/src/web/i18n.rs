//! The web form's translations, one per `clients/web/i18n/*.json`, read and
//! checked by `build.rs` at build time and compiled in as static tables, so
//! nothing is parsed at run time and a broken file never ships.

/// One language file.
#[derive(Debug)]
pub struct Lang {
    /// The file's name, e.g. `fr`: the page's `lang` and the `?lang=` value.
    pub code: &'static str,
    /// `(key, text)` sorted by key (build.rs sorts them).
    strings: &'static [(&'static str, &'static str)],
}

impl Lang {
    /// A language from `(key, text)` pairs sorted by key.
    #[cfg(test)]
    pub const fn new(code: &'static str, strings: &'static [(&'static str, &'static str)]) -> Lang {
        Lang { code, strings }
    }

    /// The text for `key`, if this language has it.
    pub fn lookup(&self, key: &str) -> Option<&'static str> {
        self.strings
            .binary_search_by_key(&key, |(k, _)| k)
            .ok()
            .map(|i| self.strings[i].1)
    }

    /// The text for `key`, or nothing.
    pub fn get(&self, key: &str) -> &'static str {
        self.lookup(key).unwrap_or("")
    }

    /// Every key of this language.
    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = &'static str> {
        self.strings.iter().map(|(k, _)| *k)
    }
}

/// Every language, sorted by code.
pub static LANGS: &[Lang] = include!(concat!(env!("OUT_DIR"), "/web_i18n.rs"));

/// The language used when nothing else matches.
const DEFAULT_LANG: &str = "en";

/// English, else the first language there is, else one with no strings.
pub fn default_lang() -> &'static Lang {
    static FALLBACK: Lang = Lang {
        code: DEFAULT_LANG,
        strings: &[],
    };
    LANGS
        .iter()
        .find(|l| l.code == DEFAULT_LANG)
        .or_else(|| LANGS.first())
        .unwrap_or(&FALLBACK)
}

/// The build script's reader, so the unit tests pin its rules.
#[cfg(test)]
#[path = "../../build/translations.rs"]
mod translations;

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(code: &str) -> &'static Lang {
        LANGS.iter().find(|l| l.code == code).unwrap()
    }

    #[test]
    fn every_language_file_parses_and_has_every_key_of_english() {
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/web/i18n"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".json")
            })
            .count();
        assert_eq!(LANGS.len(), files, "a language file did not parse");
        let en = lang("en");
        assert!(LANGS.iter().any(|l| l.code == "fr"));
        for l in LANGS.iter() {
            for key in en.keys() {
                assert!(l.lookup(key).is_some(), "{}.json lacks {key}", l.code);
            }
            assert!(
                ["ltr", "rtl"].contains(&l.get("dir")),
                "{}.json dir",
                l.code
            );
            assert!(!l.get("language_name").is_empty());
        }
        assert_eq!(default_lang().code, "en");
        assert_eq!(en.get("language_name"), "English");
        assert_eq!(en.get("no such key"), "");
    }

    #[test]
    fn flat_json() {
        use translations::parse as parse_flat_json; // the build script's reader
        let pairs = parse_flat_json("");
        assert!(pairs.is_err(), "empty input");
        let pairs =
            parse_flat_json(r#" { "a" : "x\"\\\/\n\u00e9\ud83d\ude00", "b":"" } "#).unwrap();
        assert_eq!(pairs[0], ("a".to_owned(), "x\"\\/\né😀".to_owned()));
        assert_eq!(pairs[1], ("b".to_owned(), String::new()));
        assert_eq!(parse_flat_json("{}").unwrap(), vec![]);
        for bad in [
            r#"{"a":1}"#,
            r#"{"a":"x",}"#,
            r#"{"a":"x"} x"#,
            r#"{"a":"x","a":"y"}"#,
            r#"{"a":"\ud83d"}"#,
            "{\"a\":\"\n\"}",
            r#"{"a":"x""#,
        ] {
            assert!(parse_flat_json(bad).is_err(), "{bad}");
        }
    }
}
