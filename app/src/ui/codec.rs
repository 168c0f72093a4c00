//! How page data travels to the browser for hydration: JSON with every character past ASCII
//! written as a `\uXXXX` escape. Leptos puts each resource into the page as a string quoted by
//! Rust's `Debug`, which checks each character past ASCII for printability, one at a time, and
//! copies ASCII in runs: for the Chinese of a page that check was more instructions than any
//! other part of rendering it.
use std::future::Future;
use std::io;

use leptos::prelude::Resource;
use leptos::server::codee::{Decoder, Encoder};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// JSON in ASCII only (see the module).
pub struct AsciiJson;

impl<T: Serialize> Encoder<T> for AsciiJson {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        val.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            AsciiFormatter,
        ))?;
        // Every byte written is ASCII (the formatter escapes the rest).
        String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
    }
}

impl<T: DeserializeOwned> Decoder<T> for AsciiJson {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(val)
    }
}

/// serde_json's compact output, with characters past ASCII in strings escaped.
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for &u in c.encode_utf16(&mut units).iter() {
                let u = u as usize;
                writer.write_all(&[
                    b'\\',
                    b'u',
                    HEX[u >> 12],
                    HEX[(u >> 8) & 15],
                    HEX[(u >> 4) & 15],
                    HEX[u & 15],
                ])?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// A page's data: what `Resource::new` makes, sent as [`AsciiJson`].
pub type PageResource<T> = Resource<T, AsciiJson>;

/// `Resource::new` with [`AsciiJson`]: `source` is tracked, and `fetcher` loads the data
/// (on the server once, its value sent with the page; in the browser when `source` changes).
#[track_caller]
pub fn page_resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> PageResource<T>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Page {
        name: String,
        alerts: Vec<String>,
        cash: i64,
    }

    #[test]
    fn page_data_goes_as_ascii_and_comes_back_the_same() {
        let page = Page {
            name: "张三 \"引号\" \\ </script> 😀 é\n".into(),
            alerts: vec!["您的余额不足".into(), String::new()],
            cash: -1250,
        };
        let sent = <AsciiJson as Encoder<Page>>::encode(&page).unwrap();
        assert!(sent.is_ascii(), "{sent}");
        assert!(sent.contains(r"\u5f20\u4e09"), "{sent}");
        assert!(sent.contains(r"\ud83d\ude00"), "a surrogate pair: {sent}");
        // Plain JSON, as any JSON reader sees it.
        let plain: serde_json::Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(plain, serde_json::to_value(&page).unwrap());
        let back: Page = <AsciiJson as Decoder<Page>>::decode(&sent).unwrap();
        assert_eq!(back, page);
    }
}
