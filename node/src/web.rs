//! The web cluster manager's assets, built into the binary (nothing is fetched at run time)
//! and served by every node on its own port: `GET /` is the page, `GET /web/*` its script and
//! style. The page runs everything through the node's own `POST /api/execute` sessions —
//! the same server functions DolphinDB's web manager calls (`getClusterPerf(true)`,
//! `startDataNode`, `saveClusterNodesConfigs`, `getDFSDirectoryContent`, `objs(true)`, …) —
//! and the Dashboard reads each node's `GET /metrics` (D104).

const INDEX: &str = include_str!("../web/index.html");
const SCRIPT: &str = include_str!("../web/app.js");
const STYLE: &str = include_str!("../web/app.css");

/// The asset at `path`: its content type and body.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    // The query string and fragment are the page's own business.
    let path = path.split(['?', '#']).next().unwrap_or(path);
    match path {
        "/" | "/index.html" => Some(("text/html; charset=utf-8", INDEX)),
        "/web/app.js" => Some(("application/javascript; charset=utf-8", SCRIPT)),
        "/web/app.css" => Some(("text/css; charset=utf-8", STYLE)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_assets_the_binary_serves() {
        let (ty, page) = asset("/").unwrap();
        assert!(ty.starts_with("text/html"));
        for needed in ["/web/app.js", "/web/app.css"] {
            assert!(page.contains(needed), "the page loads {needed}");
            assert!(asset(needed).is_some(), "{needed} is served");
        }
        // Nothing from elsewhere: no absolute URL in any asset.
        for (_, body) in [INDEX, SCRIPT, STYLE].map(|b| ((), b)) {
            assert!(!body.contains("https://"), "an asset fetches from outside");
        }
        assert!(asset("/web/nope.js").is_none());
        assert_eq!(asset("/?x=1").map(|a| a.0), asset("/").map(|a| a.0));
    }
}
