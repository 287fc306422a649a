//! What the C module's daemon hop, which reads the application's response
//! head as a CGI script's, makes of two headers, and applications rely on:
//! a `Status` header sets the status, and a 200 response whose `Location`
//! is a local path is served by Apache from that path instead (RFC 3875's
//! local redirect; mod_wsgi documents it for delegating file serving to
//! Apache). Embedded mode passes both through as ordinary headers.

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

#[cfg(test)]
mod tests {
    use super::*;

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
