//! How page data travels to the browser for hydration: its JSON in Base64. Leptos puts each
//! resource into the page as a string quoted by Rust's `Debug`, which copies runs of plain
//! ASCII and takes every other character (each quote and backslash of JSON, each character
//! past ASCII) one at a time: for a page's Chinese, and then for the `\uXXXX` escapes that
//! replaced it, that was more instructions than any other part of rendering the page. Base64
//! is one run, and shorter than those escapes.
use std::future::Future;
use std::pin::Pin;

use data_encoding::BASE64;
use leptos::prelude::Resource;
use leptos::server::codee::{Decoder, Encoder};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// JSON in Base64 (see the module).
pub struct Base64Json;

impl<T: Serialize> Encoder<T> for Base64Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        Ok(BASE64.encode(&serde_json::to_vec(val)?))
    }
}

impl<T: DeserializeOwned> Decoder<T> for Base64Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        let json = BASE64
            .decode(val.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("page data is not Base64: {e}")))?;
        serde_json::from_slice(&json)
    }
}

/// A page's data: what `Resource::new` makes, sent as [`Base64Json`].
pub type PageResource<T> = Resource<T, Base64Json>;

/// `Resource::new` with [`Base64Json`]: `source` is tracked, and `fetcher` loads the data
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
    // Boxed here, so that the resource's own futures around the fetch hold a pointer: a page's
    // loading future is kilobytes, and leptos moves those futures several times a view.
    let fetcher = move |s: S| -> Pin<Box<dyn Future<Output = T> + Send>> { Box::pin(fetcher(s)) };
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
    fn page_data_goes_as_one_run_of_base64_and_comes_back_the_same() {
        let page = Page {
            name: "张三 \"引号\" \\ </script> 😀 é\n".into(),
            alerts: vec!["您的余额不足".into(), String::new()],
            cash: -1250,
        };
        let sent = <Base64Json as Encoder<Page>>::encode(&page).unwrap();
        assert!(
            sent.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
            "nothing that Debug or HTML escapes: {sent}"
        );
        assert_eq!(format!("{sent:?}"), format!("\"{sent}\""));
        let json = BASE64.decode(sent.as_bytes()).unwrap();
        let plain: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(plain, serde_json::to_value(&page).unwrap());
        let back: Page = <Base64Json as Decoder<Page>>::decode(&sent).unwrap();
        assert_eq!(back, page);
    }

    #[test]
    fn page_data_that_is_not_base64_is_an_error_not_a_panic() {
        let err = <Base64Json as Decoder<Page>>::decode("{\"name\":1}").unwrap_err();
        assert!(err.to_string().contains("Base64"), "{err}");
    }
}
