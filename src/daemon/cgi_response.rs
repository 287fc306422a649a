//! What the C module's daemon hop, which reads the application's response
//! head as a CGI script's, makes of two headers, and applications rely on:
//! a `Status` header sets the status, and a 200 response whose `Location`
//! is a local path is served by Apache from that path instead (RFC 3875's
//! local redirect; mod_wsgi documents it for delegating file serving to
//! Apache). Embedded mode passes both through as ordinary headers. Its
//! header buffer also bounds each line (header-buffer-size=).

/// Applies and removes a `Status: NNN reason` header. A value that does not
/// start with a status code gives 500, as in the C module.
pub fn apply_status_header(status: &mut u16, status_line: &mut String, headers: &mut Vec<(String, String)>) {
    let Some(index) = headers.iter().position(|(name, _)| name.eq_ignore_ascii_case("status")) else { return };
    let (_, value) = headers.remove(index);
    let value = value.trim();
    match value.get(..3).and_then(|code| code.parse::<u16>().ok()).filter(|code| (100..1000).contains(code)) {
        Some(code) => {
            *status = code;
            *status_line = value.to_owned();
        }
        None => {
            *status = 500;
            *status_line = "500 Internal Server Error".to_owned();
        }
    }
}

/// The local path a 200 response redirects to, if any.
pub fn local_redirect(status: u16, headers: &[(String, String)]) -> Option<&str> {
    if status != 200 {
        return None;
    }
    headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("location")).map(|(_, value)| value.as_str()).filter(|value| value.starts_with('/'))
}

/// The first response head line longer than header-buffer-size= allows,
/// described, counted as the C module's Apache child counts: "Name: value"
/// (or "Status: NNN reason") plus the line end and a terminating NUL.
pub fn oversized_line(status_line: &str, headers: &[(String, String)], limit: usize) -> Option<String> {
    let over = |len: usize| len + 3 > limit;
    if over("Status: ".len() + wire_len(status_line)) {
        return Some(format!("the status line of {} bytes", wire_len(status_line)));
    }
    let line = |name: &str, value: &str| wire_len(name) + 2 + wire_len(value);
    headers.iter().find(|(name, value)| over(line(name, value))).map(|(name, value)| format!("the header '{name}' of {} bytes", line(name, value)))
}

/// The length of a head's text on the wire, where each character is one
/// latin-1 byte.
fn wire_len(text: &str) -> usize {
    if text.is_ascii() { text.len() } else { text.chars().count() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value_len: usize) -> Vec<(String, String)> {
        vec![(name.to_owned(), "a".repeat(value_len))]
    }

    #[test]
    fn latin1_characters_count_one_byte_each() {
        let value = "é".repeat(32758);
        assert_eq!(oversized_line("200 OK", &[("X-One".to_owned(), value)], 32768), None);
    }

    #[test]
    fn lines_count_as_the_c_modules_child_counts_them() {
        // Measured on mod_wsgi 4.9.4 with the default 32768: X-One with a
        // value of 32758 bytes passes, 32759 does not.
        assert_eq!(oversized_line("200 OK", &header("X-One", 32758), 32768), None);
        assert!(oversized_line("200 OK", &header("X-One", 32759), 32768).unwrap().contains("'X-One' of 32766 bytes"));
        // "Status: " + "200 " + a reason of 32753 passes, 32754 does not.
        assert_eq!(oversized_line(&format!("200 {}", "r".repeat(32753)), &[], 32768), None);
        assert!(oversized_line(&format!("200 {}", "r".repeat(32754)), &[], 32768).unwrap().starts_with("the status line"));
    }

    fn head(status: u16, headers: &[(&str, &str)]) -> (u16, String, Vec<(String, String)>) {
        (status, format!("{status} OK"), headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
    }

    #[test]
    fn status_header_sets_the_status_line_and_goes() {
        let (mut status, mut line, mut headers) = head(200, &[("Content-Type", "text/plain"), ("status", "404 Nope")]);
        apply_status_header(&mut status, &mut line, &mut headers);
        assert_eq!((status, line.as_str()), (404, "404 Nope"));
        assert_eq!(headers, [("Content-Type".to_string(), "text/plain".to_string())]);
    }

    #[test]
    fn unreadable_status_header_gives_500() {
        let (mut status, mut line, mut headers) = head(200, &[("Status", "abc")]);
        apply_status_header(&mut status, &mut line, &mut headers);
        assert_eq!((status, line.as_str()), (500, "500 Internal Server Error"));
        assert!(headers.is_empty());
    }

    #[test]
    fn no_status_header_changes_nothing() {
        let (mut status, mut line, mut headers) = head(201, &[("Location", "/x")]);
        apply_status_header(&mut status, &mut line, &mut headers);
        assert_eq!((status, line.as_str(), headers.len()), (201, "201 OK", 1));
    }

    #[test]
    fn only_a_200_to_a_local_path_redirects() {
        assert_eq!(local_redirect(200, &head(200, &[("location", "/static/a.pdf?x=1")]).2), Some("/static/a.pdf?x=1"));
        assert_eq!(local_redirect(201, &head(201, &[("Location", "/static/a.pdf")]).2), None);
        assert_eq!(local_redirect(200, &head(200, &[("Location", "http://example.com/x")]).2), None);
        assert_eq!(local_redirect(200, &head(200, &[("Location", "relative.txt")]).2), None);
        assert_eq!(local_redirect(200, &head(200, &[]).2), None);
    }
}
