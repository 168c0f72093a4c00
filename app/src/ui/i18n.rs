//! Chinese first, English on request. The choice lives in the `lang` cookie (set by
//! `/lang/{zh|en}`), so the server renders the page in it and the browser hydrates the same.
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn from_tag(tag: &str) -> Self {
        if tag.trim().to_ascii_lowercase().starts_with("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    /// The `<html lang>` value.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The language a request asked for: the `lang` cookie, else Chinese.
    pub fn from_cookie_header(header: Option<&str>) -> Self {
        header
            .into_iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == "lang")
            .map(|(_, v)| Lang::from_tag(v))
            .unwrap_or_default()
    }
}

/// The page's language: from the request on the server, from `<html lang>` in the browser.
pub fn detect() -> Lang {
    #[cfg(feature = "ssr")]
    {
        crate::ui::server::request_lang()
    }
    #[cfg(not(feature = "ssr"))]
    {
        #[cfg(feature = "hydrate")]
        {
            document()
                .document_element()
                .and_then(|e| e.get_attribute("lang"))
                .map(|l| Lang::from_tag(&l))
                .unwrap_or_default()
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Lang::Zh
        }
    }
}

pub fn use_lang() -> Lang {
    use_context::<Lang>().unwrap_or_default()
}

/// `tr(zh, en)`: the text in the page's language. Each call looks the language up through the
/// owner tree; a component with many texts on a busy page takes `use_lang()` once and
/// `pick`s (the home page and the layout do).
pub fn tr(zh: &'static str, en: &'static str) -> &'static str {
    use_lang().pick(zh, en)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_picks_the_language() {
        assert_eq!(Lang::from_cookie_header(None), Lang::Zh);
        assert_eq!(Lang::from_cookie_header(Some("a=1; lang=en")), Lang::En);
        assert_eq!(Lang::from_cookie_header(Some("lang=zh")), Lang::Zh);
        assert_eq!(Lang::from_cookie_header(Some("xlang=en")), Lang::Zh);
    }
}
