//! Small pieces every page uses: the CSRF field, error and notice boxes, money.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::domain::Fen;
use crate::ui::api::SessionInfo;
use crate::ui::codec::PageResource;
use crate::ui::i18n::tr;

/// Bumped whenever a form's action completes, so page data is fetched again.
#[derive(Clone, Copy)]
pub struct Refresh(pub RwSignal<u32>);

pub fn use_refresh() -> RwSignal<u32> {
    use_context::<Refresh>()
        .map(|r| r.0)
        .unwrap_or_else(|| RwSignal::new(0))
}

/// Makes an action's completion refresh the page's data.
pub fn refreshing<S>(action: ServerAction<S>) -> ServerAction<S>
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    let refresh = use_refresh();
    let version = action.version();
    Effect::new(move |prev: Option<usize>| {
        let v = version.get();
        if prev.is_some_and(|p| p != v) {
            refresh.update(|n| *n += 1);
        }
        v
    });
    action
}

pub type SessionResource = PageResource<Result<SessionInfo, ServerFnError>>;

pub fn use_session() -> SessionResource {
    expect_context::<SessionResource>()
}

/// The fields of a service-password change (current, new, new again): the same on /account
/// and on /password; the service checks them (`Hall::change_password_as`).
#[component]
pub fn PasswordChangeFields() -> impl IntoView {
    view! {
        <label>{tr("当前密码", "Current password")}
            <input type="password" name="current" inputmode="numeric" maxlength="6" autocomplete="current-password" required />
        </label>
        <label>{tr("新密码", "New password")}
            <input type="password" name="new" inputmode="numeric" maxlength="6" autocomplete="new-password" required />
        </label>
        <label>{tr("再次输入新密码", "New password again")}
            <input type="password" name="repeat" inputmode="numeric" maxlength="6" autocomplete="new-password" required />
        </label>
    }
}

/// The hidden CSRF field every state-changing form carries.
#[component]
pub fn CsrfField() -> impl IntoView {
    let session = use_session();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let token = session.await.map(|s| s.csrf).unwrap_or_default();
                view! { <input type="hidden" name="csrf" value=token /> }
            })}
        </Suspense>
    }
}

/// The text of a server function's error, for the person.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(s) => s.clone(),
        ServerFnError::Request(_) => {
            tr("网络异常,请重试。", "Network problem; please try again.").to_owned()
        }
        ServerFnError::Args(_) | ServerFnError::MissingArg(_) => {
            tr("请完整填写表单。", "Please fill in the form completely.").to_owned()
        }
        other => other.to_string(),
    }
}

/// An action's error, shown next to its form.
#[component]
pub fn ActionError<T: Clone + Send + Sync + 'static>(
    #[prop(into)] value: Signal<Option<Result<T, ServerFnError>>>,
) -> impl IntoView {
    move || {
        value.get().and_then(|r| r.err()).map(|e| {
            view! { <p class="alert error" role="alert">{error_text(&e)}</p> }
        })
    }
}

#[component]
pub fn ErrorBox(err: ServerFnError) -> impl IntoView {
    view! { <p class="alert error" role="alert">{error_text(&err)}</p> }
}

/// A notice named by the `done` query parameter after a successful form.
#[component]
pub fn DoneNotice(
    messages: &'static [(&'static str, &'static str, &'static str)],
) -> impl IntoView {
    let query = use_query_map();
    move || {
        let done = query.read().get("done")?;
        messages
            .iter()
            .find(|(key, _, _)| *key == done)
            .map(|(_, zh, en)| view! { <p class="alert ok" role="status">{tr(zh, en)}</p> })
    }
}

pub fn money(f: Fen) -> String {
    f.to_string()
}

/// A loading placeholder.
#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="muted">{tr("加载中…", "Loading…")}</p> }
}
