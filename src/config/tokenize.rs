//! Splitting a directive's raw argument line into words.
//!
//! Follows httpd's ap_getword_conf: words are separated by whitespace; a word
//! starting with `"` or `'` runs to the matching quote, inside which a
//! backslash escapes that quote or a backslash; outside quotes only `\\`
//! collapses to `\`. On top of that, C mod_wsgi reads options as `name=` and
//! then one ap_getword_conf for the value, so `python-path='/a b'` is one
//! option whose value is `/a b`; that case is folded in here, so every option
//! comes out as one `name=value` word with the quotes gone.

use super::error::ConfigError;

/// httpd's apr_isspace set.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Splits `raw` into words (see the module comment).
///
/// An unterminated quote is an error here; httpd would silently take the
/// rest of the line.
pub fn tokenize(raw: &str) -> Result<Vec<String>, ConfigError> {
    let chars: Vec<char> = raw.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && is_space(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            return Ok(words);
        }
        let word = if chars[i] == '"' || chars[i] == '\'' {
            let (value, next) = quoted(&chars, i, raw)?;
            i = next;
            value
        } else {
            let start = i;
            let mut word = String::new();
            // Only the first '=' can introduce a quoted option value.
            let mut seen_equals = false;
            while i < chars.len() && !is_space(chars[i]) {
                let c = chars[i];
                if c == '=' && !seen_equals {
                    seen_equals = true;
                    word.push(c);
                    i += 1;
                    if i < chars.len() && (chars[i] == '"' || chars[i] == '\'') && i - 1 > start {
                        let (value, next) = quoted(&chars, i, raw)?;
                        word.push_str(&value);
                        i = next;
                        break;
                    }
                    continue;
                }
                if c == '\\' && chars.get(i + 1) == Some(&'\\') {
                    word.push('\\');
                    i += 2;
                    continue;
                }
                word.push(c);
                i += 1;
            }
            word
        };
        words.push(word);
    }
}

/// Reads a quoted word starting at `chars[open]`; returns it unescaped and the
/// index just past the closing quote.
fn quoted(chars: &[char], open: usize, raw: &str) -> Result<(String, usize), ConfigError> {
    let quote = chars[open];
    let mut value = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((value, i + 1));
        }
        if c == '\\' && matches!(chars.get(i + 1), Some(&n) if n == quote || n == '\\') {
            value.push(chars[i + 1]);
            i += 2;
            continue;
        }
        value.push(c);
        i += 1;
    }
    Err(ConfigError::UnterminatedQuote { quote, raw: raw.trim().to_string() })
}

/// Splits an option word into `(name, value)` the way C mod_wsgi does: the
/// name runs up to the first `=` and must not be empty. `None` means the word
/// is not an option at all ("Invalid option to ... definition.").
pub fn split_option(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    if name.is_empty() {
        return None;
    }
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(raw: &str) -> Vec<String> {
        tokenize(raw).unwrap()
    }

    #[test]
    fn whitespace_separates_words() {
        assert_eq!(t("  a \tb\n c  "), ["a", "b", "c"]);
        assert!(t("").is_empty());
        assert!(t(" \t ").is_empty());
    }

    #[test]
    fn double_and_single_quotes_group() {
        assert_eq!(t(r#"/app "/srv/my app.wsgi""#), ["/app", "/srv/my app.wsgi"]);
        assert_eq!(t("'a b' c"), ["a b", "c"]);
        assert_eq!(t(r#""it's""#), ["it's"]);
        assert_eq!(t(r#"'say "hi"'"#), [r#"say "hi""#]);
    }

    #[test]
    fn empty_quoted_word_is_a_word() {
        assert_eq!(t(r#""""#), [""]);
        assert_eq!(t(r#"a '' b"#), ["a", "", "b"]);
    }

    #[test]
    fn backslash_escapes_quote_and_backslash_inside_quotes() {
        assert_eq!(t(r#""a \"b\" c""#), [r#"a "b" c"#]);
        assert_eq!(t(r#"'it\'s'"#), ["it's"]);
        assert_eq!(t(r#""a\\b""#), [r"a\b"]);
        // Any other escape is kept as written.
        assert_eq!(t(r#""a\nb""#), [r"a\nb"]);
        assert_eq!(t(r#""a\'b""#), [r"a\'b"]);
    }

    #[test]
    fn backslash_outside_quotes() {
        assert_eq!(t(r"a\\b"), [r"a\b"]);
        assert_eq!(t(r"a\b"), [r"a\b"]);
        assert_eq!(t(r#"a\"b"#), [r#"a\"b"#]);
    }

    #[test]
    fn closing_quote_ends_the_word() {
        assert_eq!(t(r#""a"b"#), ["a", "b"]);
    }

    #[test]
    fn quotes_inside_an_unquoted_word_are_literal() {
        assert_eq!(t(r#"ab"c d""#).len(), 2);
        assert_eq!(t(r#"ab"c"#), [r#"ab"c"#]);
    }

    #[test]
    fn option_with_quoted_value_is_one_word() {
        assert_eq!(t("python-path='/a b'"), ["python-path=/a b"]);
        assert_eq!(t(r#"display-name="%{GROUP} x" threads=5"#), ["display-name=%{GROUP} x", "threads=5"]);
        assert_eq!(t(r#"x="a \"q\"""#), [r#"x=a "q""#]);
        assert_eq!(t(r#"lang='' b=1"#), ["lang=", "b=1"]);
    }

    #[test]
    fn whole_quoted_option_is_one_word() {
        assert_eq!(t(r#""display-name=%{GROUP}""#), ["display-name=%{GROUP}"]);
        assert_eq!(t("'python-path=/a b'"), ["python-path=/a b"]);
    }

    #[test]
    fn quote_after_later_equals_is_literal() {
        assert_eq!(t(r#"a=b="c""#), [r#"a=b="c""#]);
        assert_eq!(t(r#"a=b'c"#), ["a=b'c"]);
    }

    #[test]
    fn quoted_value_closes_the_word() {
        assert_eq!(t(r#"a="b"c"#), ["a=b", "c"]);
    }

    #[test]
    fn leading_equals_is_not_an_option_quote() {
        assert_eq!(t(r#"="x""#), [r#"="x""#]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let e = tokenize(r#"/a "/b c"#).unwrap_err();
        assert_eq!(e.to_string(), r#"Unterminated " quote in arguments: /a "/b c"#);
        assert!(tokenize("x='abc").is_err());
    }

    #[test]
    fn non_ascii_is_kept() {
        assert_eq!(t("/ü 'ä ö'"), ["/ü", "ä ö"]);
    }

    #[test]
    fn split_option_cases() {
        assert_eq!(split_option("threads=5"), Some(("threads", "5")));
        assert_eq!(split_option("lang="), Some(("lang", "")));
        assert_eq!(split_option("a=b=c"), Some(("a", "b=c")));
        assert_eq!(split_option("=5"), None);
        assert_eq!(split_option("threads"), None);
        assert_eq!(split_option(""), None);
    }
}
