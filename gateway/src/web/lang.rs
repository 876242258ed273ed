//! Which language a page is shown in: `?lang=` if it names one we have,
//! else the best `Accept-Language` entry we have, else English.

use super::i18n::{default_lang, Lang, LANGS};
use crate::http;

/// The language file for a BCP 47 tag: the exact name (any case), else its
/// primary subtag (`fr-CH` -> `fr`).
pub fn find_lang(tag: &str) -> Option<&'static Lang> {
    let tag = tag.trim();
    if tag.is_empty() || tag.len() > 35 {
        return None;
    }
    LANGS
        .iter()
        .find(|l| l.code.eq_ignore_ascii_case(tag))
        .or_else(|| {
            let primary = tag.split('-').next().unwrap_or("");
            LANGS.iter().find(|l| l.code.eq_ignore_ascii_case(primary))
        })
}

/// `?lang=` if it names a language we have, else the best `Accept-Language`
/// entry we have, else English.
pub fn choose_lang(query: Option<&str>, accept_language: Option<&str>) -> &'static Lang {
    query
        .and_then(|q| http::query_param(q, "lang"))
        .and_then(|tag| find_lang(&tag))
        .or_else(|| accept_language.and_then(lang_from_accept))
        .unwrap_or_else(default_lang)
}

/// The best language of an `Accept-Language` header (RFC 9110 12.5.4):
/// highest q first, header order among equals, q=0 never.
pub fn lang_from_accept(header: &str) -> Option<&'static Lang> {
    let mut ranked: Vec<(u16, &str)> = header
        .split(',')
        .take(32)
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = match parts.find_map(|p| p.trim().strip_prefix("q=")) {
                Some(q) => http::parse_q(q)?,
                None => 1000,
            };
            (q > 0 && !tag.is_empty() && tag != "*").then_some((q, tag))
        })
        .collect();
    ranked.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    ranked.into_iter().find_map(|(_, tag)| find_lang(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_query_then_accept_language_then_english() {
        let pick = |q: Option<&str>, a: Option<&str>| choose_lang(q, a).code;
        assert_eq!(pick(None, None), "en");
        assert_eq!(pick(None, Some("fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5")), "fr");
        assert_eq!(pick(None, Some("en;q=0.5, fr;q=0.9")), "fr");
        assert_eq!(
            pick(None, Some("en;q=0.9, fr;q=0.9")),
            "en",
            "header order among equals"
        );
        assert_eq!(pick(None, Some("zz-ZZ, FR-fr;q=0.1")), "fr");
        assert_eq!(pick(None, Some("fr;q=0, en;q=0.1")), "en");
        assert_eq!(pick(None, Some("fr;q=0")), "en", "q=0 means not acceptable");
        assert_eq!(pick(None, Some("fr;q=2, *")), "en", "invalid q is ignored");
        assert_eq!(pick(None, Some("fr;q=0.001")), "fr");
        assert_eq!(pick(None, Some(",,;;,fr")), "fr");
        assert_eq!(pick(Some("lang=fr"), Some("en")), "fr");
        assert_eq!(pick(Some("x=1&lang=en"), Some("fr")), "en");
        assert_eq!(
            pick(Some("lang=zz"), Some("fr")),
            "fr",
            "unknown ?lang= falls through"
        );
        assert_eq!(pick(Some("lang=%3Cb%3E"), None), "en");
        assert_eq!(pick(Some("lang=fr-BE"), None), "fr");
    }
}
