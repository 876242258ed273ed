//! The small template engine of the web form: `{{name}}` slots filled with
//! escaped runtime values, raw HTML the gateway built, or the language's
//! strings. The same syntax as the form's build (`clients/web`).

use super::i18n::Lang;

/// A template split once into text and `{{name}}` slots.
#[derive(Debug)]
pub struct Template(Vec<Piece>);

#[derive(Debug)]
enum Piece {
    Text(&'static str),
    Slot(&'static str),
}

impl Template {
    /// Splits `src` at its slots: `{{` a name of `[a-z0-9_]` `}}`.
    pub fn compile(src: &'static str) -> Template {
        let mut pieces = Vec::new();
        let (mut text_from, mut search) = (0, 0);
        while let Some(offset) = src[search..].find("{{") {
            let at = search + offset;
            let rest = &src[at + 2..];
            let name_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
                .count();
            if name_len > 0 && rest[name_len..].starts_with("}}") {
                pieces.push(Piece::Text(&src[text_from..at]));
                pieces.push(Piece::Slot(&rest[..name_len]));
                text_from = at + 2 + name_len + 2;
                search = text_from;
            } else {
                // Like the reference regex: try again one character on.
                search = at + 1;
            }
        }
        pieces.push(Piece::Text(&src[text_from..]));
        Template(pieces)
    }

    /// The names of the slots, in order.
    #[cfg(test)]
    pub fn slots(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().filter_map(|p| match p {
            Piece::Slot(name) => Some(*name),
            Piece::Text(_) => None,
        })
    }

    /// Fills the slots: runtime `vars` (escaped), then `raw` values (as
    /// they are), then the language's strings (escaped). An unknown name
    /// renders as nothing (the unit tests make sure there is none).
    pub fn render(&self, lang: &Lang, vars: &[(&str, &str)], raw: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(8 * 1024);
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot(name) => {
                    if let Some((_, v)) = vars.iter().find(|(k, _)| k == name) {
                        escape_into(&mut out, v);
                    } else if let Some((_, v)) = raw.iter().find(|(k, _)| k == name) {
                        out.push_str(v);
                    } else if let Some(v) = lang.lookup(name) {
                        escape_into(&mut out, v);
                    } else {
                        tracing::warn!(placeholder = name, "unknown web form placeholder");
                    }
                }
            }
        }
        out
    }
}

/// HTML-escapes `& < > " '`, so strings are safe in text and attributes.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `s` HTML-escaped, for HTML the gateway builds itself.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_strings_and_values_but_not_the_language_links() {
        let t =
            Template::compile("<p title=\"{{a}}\">{{b}} {{lang_links}} {{{{c}} {{Not}} {{x}}</p>");
        let l = Lang::new("en", &[("b", "<script>&'\"</script>"), ("c", "ok")]);
        let out = t.render(
            &l,
            &[("a", "\" onload=\"x'&<>")],
            &[("lang_links", "<a href=\"/?lang=fr\">Français</a>")],
        );
        assert_eq!(
            out,
            "<p title=\"&quot; onload=&quot;x&#39;&amp;&lt;&gt;\">&lt;script&gt;&amp;&#39;&quot;&lt;/script&gt; \
             <a href=\"/?lang=fr\">Français</a> {{ok {{Not}} </p>"
        );
        // Runtime values win over strings of the same name.
        let t = Template::compile("{{b}}");
        assert_eq!(t.render(&l, &[("b", "v")], &[]), "v");
    }
}
