//! Links must lead to http(s) pages: absolute, or relative to the app's base URL.

use url::Url;

use crate::error::Error;

/// Upstream's rule: one leading `/` is dropped and the rest resolved against `app.baseUrl`
/// (with a trailing `/`); absolute URLs stand alone; the result must be http or https. The
/// stored link stays as sent.
pub fn validate_link(link: &str, app_base_url: &Url) -> Result<(), Error> {
    if link.is_empty() {
        return Ok(());
    }
    let resolved = resolve_link(link, app_base_url)
        .map_err(|e| Error::invalid(format!("Invalid link provided; caused by TypeError: {e}")))?;
    match resolved.scheme() {
        "http" | "https" => Ok(()),
        _ => Err(Error::invalid(
            "Invalid link provided; caused by Error: Only HTTP/HTTPS links are allowed",
        )),
    }
}

/// The absolute URL a link leads to (processors use it to make links clickable elsewhere).
pub fn resolve_link(link: &str, app_base_url: &Url) -> Result<Url, url::ParseError> {
    let mut base = app_base_url.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(link.strip_prefix('/').unwrap_or(link))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://localhost/app").unwrap()
    }

    #[test]
    fn relative_and_http_links_pass() {
        for ok in [
            "/catalog",
            "catalog/x?y=1",
            "http://localhost/test",
            "https://example.com",
            "",
        ] {
            assert!(validate_link(ok, &base()).is_ok(), "{ok}");
        }
        assert_eq!(
            resolve_link("/catalog", &base()).unwrap().as_str(),
            "http://localhost/app/catalog"
        );
    }

    #[test]
    fn other_schemes_fail() {
        for bad in [
            "javascript:alert(document.domain)",
            "ftp://example.com",
            "data:text/html,x",
            "http://[::1",
        ] {
            let err = validate_link(bad, &base()).unwrap_err();
            assert!(
                err.to_string().starts_with("Invalid link provided"),
                "{bad}: {err}"
            );
        }
    }
}
