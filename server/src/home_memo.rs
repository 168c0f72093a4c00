//! The signed-in home page is rendered again only when something on it has changed.
//!
//! Every view still reads the session and the page's data from the stores, as the page would;
//! what it skips is rendering them into HTML when the last page rendered for that subscriber
//! was made from equal inputs: the address, the language, the session's summary (CSRF token,
//! banner) and the home page's data. Those are everything the home page shows, so an equal
//! set renders an equal page, except for the CSP nonce, which is new in each response and
//! put back into the kept page. Nothing needs to be invalidated: a top-up, a subscription or
//! a change made through another instance changes the data read, and the page is rendered
//! again. The home page is where a subscriber lands and what they reload; the other pages
//! are rendered on every view.
use std::sync::{Arc, Mutex};

use app::ui::api::{session_info, SessionInfo};
use app::ui::i18n::Lang;
use app::ui::pages::{home_data, HomeData};
use app::ui::server::Known;
use app::ui::session::Web;
use app::ui::CspNonce;
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hashlink::LruCache;

/// How many subscribers' home pages one instance keeps (a page is about 5 KB).
const SUBSCRIBERS_KEPT: usize = 1024;

/// The kept pages, one per subscriber, the least recently viewed dropped first.
#[derive(Clone)]
pub struct HomeMemo(Arc<Mutex<LruCache<String, Arc<Rendered>>>>);

impl Default for HomeMemo {
    fn default() -> Self {
        Self::with_capacity(SUBSCRIBERS_KEPT)
    }
}

/// All a home page is rendered from. A change that makes the page read anything else (a
/// context, a header, the clock) must add it here, or a kept page would hide it.
#[derive(PartialEq)]
struct Inputs {
    uri: String,
    lang: Lang,
    session: SessionInfo,
    home: HomeData,
}

/// A page as rendered: its headers, and its body cut where the nonce was.
struct Rendered {
    inputs: Inputs,
    headers: HeaderMap,
    pieces: Vec<Bytes>,
}

/// What a view of the home page comes to before the page is rendered.
pub enum Step {
    /// The page kept for these inputs, with this response's nonce.
    Served(Response),
    /// Render the page (the data read is on the request for the page's loaders); `Some`: keep
    /// what it renders.
    Render(Request, Option<Box<Pending>>),
}

/// A rendering to keep once it is done.
pub struct Pending {
    memo: HomeMemo,
    key: String,
    inputs: Inputs,
    nonce: String,
}

impl HomeMemo {
    pub fn with_capacity(subscribers: usize) -> Self {
        Self(Arc::new(Mutex::new(LruCache::new(subscribers.max(1)))))
    }

    /// For a GET of `/` (the caller checks) by a signed-in browser (`web`, with the session rules applied): the
    /// kept page when its inputs are the ones read now, else the request to render.
    pub async fn view(&self, mut req: Request, web: Option<Web>) -> Step {
        let (Some(web), Some(nonce)) = (web, req.extensions().get::<CspNonce>().cloned()) else {
            return Step::Render(req, None);
        };
        let Some(key) = web.state.msisdn.clone() else {
            return Step::Render(req, None);
        };
        // An error is the page's to show; it is rendered and not kept.
        let Ok(home) = home_data(&web).await else {
            return Step::Render(req, None);
        };
        let inputs = Inputs {
            uri: req.uri().to_string(),
            lang: web.lang,
            session: session_info(&web),
            home,
        };
        let kept = self.0.lock().ok().and_then(|mut m| m.get(&key).cloned());
        if let Some(page) = kept.filter(|p| p.inputs == inputs) {
            return Step::Served(page.respond(&nonce.0));
        }
        let ext = req.extensions_mut();
        ext.insert(Known(Arc::new(inputs.session.clone())));
        ext.insert(Known(Arc::new(inputs.home.clone())));
        Step::Render(
            req,
            Some(Box::new(Pending {
                memo: self.clone(),
                key,
                inputs,
                nonce: nonce.0,
            })),
        )
    }
}

impl Pending {
    /// Keeps a page rendered in full (200, no cookie of its own) and passes it on.
    pub async fn keep(self, res: Response) -> Response {
        if res.status() != StatusCode::OK || res.headers().contains_key(header::SET_COOKIE) {
            return res;
        }
        let (parts, body) = res.into_parts();
        let bytes = match to_bytes(body, usize::MAX).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "the home page could not be rendered");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut headers = parts.headers.clone();
        headers.remove(header::CONTENT_LENGTH);
        let page = Rendered {
            inputs: self.inputs,
            headers,
            pieces: cut(&bytes, self.nonce.as_bytes()),
        };
        if let Ok(mut m) = self.memo.0.lock() {
            m.insert(self.key, Arc::new(page));
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

impl Rendered {
    fn respond(&self, nonce: &str) -> Response {
        let len = self.pieces.iter().map(Bytes::len).sum::<usize>()
            + nonce.len() * (self.pieces.len() - 1);
        let mut body = Vec::with_capacity(len);
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(nonce.as_bytes());
            }
            body.extend_from_slice(piece);
        }
        let mut res = Response::new(Body::from(body));
        *res.headers_mut() = self.headers.clone();
        res
    }
}

/// `bytes` in the pieces between the occurrences of `nonce` (one piece when there is none).
fn cut(bytes: &Bytes, nonce: &[u8]) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut start = 0;
    if !nonce.is_empty() {
        while let Some(at) = find(&bytes[start..], nonce) {
            pieces.push(bytes.slice(start..start + at));
            start += at + nonce.len();
        }
    }
    pieces.push(bytes.slice(start..));
    pieces
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_cut_where_the_nonce_was_and_put_back_with_another() {
        let page =
            Bytes::from_static(b"<script nonce=\"N1\">a</script><script nonce=\"N1\">b</script>");
        let pieces = cut(&page, b"N1");
        assert_eq!(pieces.len(), 3);
        let kept = Rendered {
            inputs: Inputs {
                uri: "/".into(),
                lang: Lang::Zh,
                session: SessionInfo::default(),
                home: sample_home(),
            },
            headers: HeaderMap::new(),
            pieces,
        };
        let res = kept.respond("N2xyz");
        let body = futures_body(res);
        assert_eq!(
            body,
            "<script nonce=\"N2xyz\">a</script><script nonce=\"N2xyz\">b</script>"
        );
    }

    #[test]
    fn a_page_without_the_nonce_is_one_piece() {
        let page = Bytes::from_static(b"<p>plain</p>");
        assert_eq!(cut(&page, b"N1"), vec![page.clone()]);
        assert_eq!(cut(&page, b""), vec![page]);
    }

    fn futures_body(res: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt.block_on(to_bytes(res.into_body(), usize::MAX)).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn sample_home() -> HomeData {
        HomeData {
            name: "张三".into(),
            msisdn: "138****8000".into(),
            brand: "全球通".into(),
            status: "正常".into(),
            active: true,
            tier: "五星".into(),
            plan: "套餐".into(),
            cash: app::domain::Fen::new(100),
            gift: app::domain::Fen::new(0),
            total: app::domain::Fen::new(100),
            month_to_date: app::domain::Fen::new(0),
            alert_threshold: app::domain::Fen::new(10_000),
            allowances: vec![],
            points: 0,
            points_expiring: 0,
            alerts: vec![],
        }
    }
}
