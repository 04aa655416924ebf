//! The page's files, built into the binary: the designer serves nothing
//! from disk, so what a browser runs is what was reviewed with the code.

/// A file of the page: its content type and bytes.
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// The file served at `path` (`/` is the page itself), if there is one.
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, bytes): (&'static str, &'static [u8]) = match path {
        "/" | "/index.html" => (
            "text/html; charset=utf-8",
            include_bytes!("assets/index.html"),
        ),
        "/designer.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/designer.js"),
        ),
        "/designer.css" => (
            "text/css; charset=utf-8",
            include_bytes!("assets/designer.css"),
        ),
        "/api.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/api.js"),
        ),
        "/dom.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/dom.js"),
        ),
        "/form.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/form.js"),
        ),
        "/pointer.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/pointer.js"),
        ),
        "/problems.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/problems.js"),
        ),
        "/results.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/results.js"),
        ),
        "/favicon.svg" => ("image/svg+xml", include_bytes!("assets/favicon.svg")),
        _ => return None,
    };
    Some(Asset {
        content_type,
        bytes,
    })
}
