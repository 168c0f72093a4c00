//! The console's pages: sign-in, the desk (search, act as a subscriber, open sessions), the
//! audit log (supervisors) and staff accounts (admins).
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::ui::codec::{page_resource, PageResource};
use crate::ui::i18n::tr;
use crate::ui::layout::{urlencode, LangSwitch};
use crate::ui::staff::api::*;
use crate::ui::widgets::{use_refresh, ActionError, DoneNotice, ErrorBox, Loading};

pub type StaffResource = PageResource<Result<StaffInfo, ServerFnError>>;

fn use_staff() -> StaffResource {
    expect_context::<StaffResource>()
}

/// The staff session's CSRF token, carried by every console form.
#[component]
fn StaffCsrf() -> impl IntoView {
    let staff = use_staff();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let token = staff.await.map(|s| s.csrf).unwrap_or_default();
                view! { <input type="hidden" name="csrf" value=token /> }
            })}
        </Suspense>
    }
}

const NAV: &[(&str, &str, &str, &[&str])] = &[
    ("/staff", "工作台", "Desk", &["agent", "supervisor"]),
    ("/staff/audit", "审计日志", "Audit log", &["supervisor"]),
    ("/staff/admin", "员工管理", "Staff", &["admin"]),
];

/// The frame around every console page (and the provider of the staff session).
#[component]
fn StaffFrame(title: &'static str, title_en: &'static str, children: Children) -> impl IntoView {
    let refresh = use_refresh();
    let staff: StaffResource = page_resource(move || refresh.get(), |_| load_staff_session());
    provide_context(staff);
    let sign_out = ServerAction::<StaffSignOut>::new();
    view! {
        <leptos_meta::Title text=format!("{} · {}", tr(title, title_en), tr("客服工作台", "Care console")) />
        <header class="top staff">
            <a class="brand" href="/staff">
                <span class="logo" aria-hidden="true">"◆"</span>
                {tr("客服工作台", "Care console")}
            </a>
            <div class="who">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        staff.await.ok().and_then(|s| s.username.clone().map(|u| (u, s))).map(|(u, s)| view! {
                            <span class="msisdn" id="staff-who">{format!("{} {} · {}", s.display_name, u, s.role_label)}</span>
                            <ActionForm action=sign_out attr:class="inline">
                                <StaffCsrf />
                                <button type="submit" class="link" id="staff-sign-out">{tr("退出", "Sign out")}</button>
                            </ActionForm>
                        })
                    })}
                </Suspense>
                <LangSwitch />
            </div>
        </header>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let role = staff.await.ok().and_then(|s| s.role).unwrap_or_default();
                view! {
                    <nav class="main">
                        {NAV.iter().filter(|(_, _, _, roles)| roles.contains(&role.as_str())).map(|(href, zh, en, _)| {
                            view! { <a href=*href>{tr(zh, en)}</a> }
                        }).collect_view()}
                    </nav>
                }
            })}
        </Suspense>
        <main>
            <h1>{tr(title, title_en)}</h1>
            {children()}
        </main>
    }
}

#[component]
pub fn StaffLoginPage() -> impl IntoView {
    let sign_in = ServerAction::<StaffSignIn>::new();
    view! {
        <StaffFrame title="员工登录" title_en="Staff sign-in">
            <DoneNotice messages=&[("signed_out", "您已退出客服工作台。", "You have signed out of the console.")] />
            <ActionForm action=sign_in attr:class="card narrow" attr:id="staff-login-form">
                <StaffCsrf />
                <label>{tr("工号", "Username")}
                    <input type="text" name="username" autocomplete="username" required />
                </label>
                <label>{tr("密码", "Password")}
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <label>{tr("动态口令(主管、管理员)", "Authenticator code (supervisors, admins)")}
                    <input type="text" name="totp" inputmode="numeric" maxlength="6" autocomplete="one-time-code" />
                </label>
                <ActionError value=sign_in.value() />
                <button type="submit" class="primary">{tr("登录", "Sign in")}</button>
            </ActionForm>
        </StaffFrame>
    }
}

/// The desk: find a subscriber, act as them with a reason, and (supervisors) the open sessions.
#[component]
pub fn StaffHomePage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let found = page_resource(q, find_subscriber);
    view! {
        <StaffFrame title="客服工作台" title_en="Care desk">
            <DoneNotice messages=&[("ended", "代客操作已结束。", "The session as the subscriber has ended.")] />
            <Acting />
            <form method="get" action="/staff" class="card" id="search-form">
                <label>{tr("查询客户(手机号码;主管可按姓名)", "Find a subscriber (number; supervisors also by name)")}
                    <input type="search" name="q" value=q required />
                </label>
                <button type="submit">{tr("查询", "Search")}</button>
            </form>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match found.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(list) if list.is_empty() && !q().is_empty() => view! {
                            <p class="muted" id="not-found">{tr("没有找到该客户。", "No such subscriber.")}</p>
                        }.into_any(),
                        Ok(list) => list.into_iter().map(|s| view! { <Found s /> }).collect_view().into_any(),
                    }
                })}
            </Suspense>
            <Active />
        </StaffFrame>
    }
}

/// The staff member's own open session as a subscriber, if any.
#[component]
fn Acting() -> impl IntoView {
    let staff = use_staff();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                staff.await.ok().and_then(|s| s.acting).map(|(m, ends)| view! {
                    <p class="alert warn" id="acting-now">
                        {format!("{} {m}, {} {ends}. ", tr("正在代客操作", "Acting as"), tr("结束于", "ends at"))}
                        <a href="/">{tr("回到客户页面", "Back to the subscriber's hall")}</a>
                    </p>
                })
            })}
        </Suspense>
    }
}

#[component]
fn Found(s: FoundSubscriber) -> impl IntoView {
    let act = ServerAction::<ActAs>::new();
    view! {
        <section class="card found">
            <h2>{s.msisdn.clone()}</h2>
            <dl class="facts">
                <dt>{tr("姓名", "Name")}</dt><dd class="masked-name">{s.name}</dd>
                <dt>{tr("证件号码", "ID number")}</dt><dd class="masked-id">{s.id_card}</dd>
                <dt>{tr("品牌", "Brand")}</dt><dd>{s.brand}</dd>
                <dt>{tr("状态", "Status")}</dt><dd>{s.status}</dd>
                <dt>{tr("星级", "Tier")}</dt><dd>{s.tier}</dd>
                <dt>{tr("套餐", "Plan")}</dt><dd>{s.plan}</dd>
            </dl>
            <ActionForm action=act attr:class="act-form">
                <StaffCsrf />
                <input type="hidden" name="msisdn" value=s.msisdn.clone() />
                <label>{tr("代客操作原因(必填,客户将收到短信通知)", "Reason for acting as the subscriber (required; they get an SMS)")}
                    <textarea name="reason" required minlength="4" maxlength="500"></textarea>
                </label>
                <ActionError value=act.value() />
                <button type="submit" class="primary">{tr("代客操作(30 分钟)", "Act as subscriber (30 minutes)")}</button>
            </ActionForm>
        </section>
    }
}

/// Supervisors: every open session, each with an end button.
#[component]
fn Active() -> impl IntoView {
    let end = ServerAction::<EndImpersonation>::new();
    let rows = page_resource(
        move || end.version().get(),
        |_| async move {
            let me = load_staff_session().await?;
            if me.role.as_deref() == Some("supervisor") {
                load_active().await.map(Some)
            } else {
                Ok(None)
            }
        },
    );
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                rows.await.ok().flatten().map(|rows| view! {
                    <section class="card" id="active-sessions">
                        <h2>{tr("进行中的代客操作", "Open sessions as subscribers")}</h2>
                        <ActionError value=end.value() />
                        {if rows.is_empty() {
                            view! { <p class="muted">{tr("无", "None")}</p> }.into_any()
                        } else {
                            view! {
                                <table>
                                    <thead><tr>
                                        <th>{tr("员工", "Staff")}</th><th>{tr("客户", "Subscriber")}</th>
                                        <th>{tr("原因", "Reason")}</th><th>{tr("开始", "Started")}</th>
                                        <th>{tr("结束于", "Ends")}</th><th></th>
                                    </tr></thead>
                                    <tbody>
                                        {rows.into_iter().map(|r| view! {
                                            <tr>
                                                <td>{r.staff}</td><td>{r.msisdn}</td><td>{r.reason}</td>
                                                <td>{r.started}</td><td>{r.ends}</td>
                                                <td>
                                                    <ActionForm action=end attr:class="inline">
                                                        <StaffCsrf />
                                                        <input type="hidden" name="id" value=r.id />
                                                        <button type="submit">{tr("结束", "End")}</button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    </section>
                })
            })}
        </Suspense>
    }
}

/// Supervisors: the audit log, filtered, with a CSV export of the same filter.
#[component]
pub fn StaffAuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        AuditQuery {
            staff: q.get("staff").unwrap_or_default(),
            msisdn: q.get("msisdn").unwrap_or_default(),
            action: q.get("action").unwrap_or_default(),
            from: q.get("from").unwrap_or_default(),
            to: q.get("to").unwrap_or_default(),
        }
    };
    let rows = page_resource(filter, |f| {
        let some = |s: String| Some(s).filter(|s| !s.is_empty());
        load_audit(
            some(f.staff),
            some(f.msisdn),
            some(f.action),
            some(f.from),
            some(f.to),
        )
    });
    let csv = move || {
        let f = filter();
        format!(
            "/staff/audit.csv?staff={}&msisdn={}&action={}&from={}&to={}",
            urlencode(&f.staff),
            urlencode(&f.msisdn),
            urlencode(&f.action),
            urlencode(&f.from),
            urlencode(&f.to)
        )
    };
    view! {
        <StaffFrame title="审计日志" title_en="Audit log">
            <form method="get" action="/staff/audit" class="card filters" id="audit-filter">
                <label>{tr("员工工号", "Staff")}<input type="text" name="staff" value=move || filter().staff /></label>
                <label>{tr("客户号码", "Subscriber")}<input type="text" name="msisdn" value=move || filter().msisdn /></label>
                <label>{tr("操作", "Action")}
                    <input type="text" name="action" list="actions" value=move || filter().action />
                    <datalist id="actions">
                        <option value="staff.sign_in" /><option value="impersonation." />
                        <option value="customer.read" /><option value="customer.action" />
                        <option value="audit." /><option value="staff." />
                    </datalist>
                </label>
                <label>{tr("起始日期", "From")}<input type="date" name="from" value=move || filter().from /></label>
                <label>{tr("截止日期", "To")}<input type="date" name="to" value=move || filter().to /></label>
                <button type="submit">{tr("筛选", "Filter")}</button>
                <a class="button" id="audit-csv" rel="external" href=csv download="audit.csv">{tr("导出 CSV", "Export CSV")}</a>
            </form>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match rows.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(rows) => view! {
                            <div class="scroll">
                            <table id="audit-table">
                                <thead><tr>
                                    <th>{tr("时间", "When")}</th><th>{tr("员工", "Staff")}</th>
                                    <th>{tr("客户", "Subscriber")}</th><th>{tr("操作", "Action")}</th>
                                    <th>{tr("结果", "Outcome")}</th><th>{tr("地址", "Address")}</th>
                                    <th>{tr("说明", "Detail")}</th>
                                </tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|r| view! {
                                        <tr>
                                            <td>{r.at}</td><td>{r.staff}</td><td>{r.msisdn}</td>
                                            <td>{r.action}</td><td>{r.outcome}</td><td>{r.client_addr}</td>
                                            <td>{r.impersonation.map(|i| format!("#{i} ")).unwrap_or_default()}{r.detail}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </StaffFrame>
    }
}

/// Admins: staff accounts — create, disable or enable, reset a password.
#[component]
pub fn StaffAdminPage() -> impl IntoView {
    let refresh = use_refresh();
    let create = ServerAction::<CreateStaffAccount>::new();
    let toggle = ServerAction::<SetStaffDisabled>::new();
    let reset = ServerAction::<ResetStaffPassword>::new();
    let data = page_resource(
        move || {
            (
                refresh.get(),
                create.version().get(),
                toggle.version().get(),
                reset.version().get(),
            )
        },
        |_| load_accounts(),
    );
    view! {
        <StaffFrame title="员工管理" title_en="Staff accounts">
            <DoneNotice messages=&[
                ("created", "已创建员工账号。", "Account created."),
                ("saved", "已保存。", "Saved."),
                ("reset", "已重置密码。", "Password reset."),
            ] />
            <ActionError value=toggle.value() />
            <ActionError value=reset.value() />
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(d) => view! {
                            {d.new_secret.map(|(u, s)| view! {
                                <p class="alert ok" id="new-secret">{format!("{} {u}: {s}", tr("请将动态口令密钥录入认证器(仅显示一次)", "Enrol this authenticator secret (shown once) for"))}</p>
                            })}
                            <table id="staff-table">
                                <thead><tr>
                                    <th>{tr("工号", "Username")}</th><th>{tr("姓名", "Name")}</th>
                                    <th>{tr("角色", "Role")}</th><th>{tr("状态", "State")}</th><th></th>
                                </tr></thead>
                                <tbody>
                                    {d.staff.into_iter().map(|r| view! {
                                        <tr>
                                            <td>{r.username.clone()}</td><td>{r.display_name}</td><td>{r.role}</td>
                                            <td>{if r.disabled { tr("已停用", "Disabled") } else { tr("正常", "Active") }}</td>
                                            <td>
                                                <ActionForm action=toggle attr:class="inline">
                                                    <StaffCsrf />
                                                    <input type="hidden" name="id" value=r.id />
                                                    <input type="hidden" name="disabled" value=if r.disabled { "0" } else { "1" } />
                                                    <button type="submit">{if r.disabled { tr("启用", "Enable") } else { tr("停用", "Disable") }}</button>
                                                </ActionForm>
                                                <ActionForm action=reset attr:class="inline">
                                                    <StaffCsrf />
                                                    <input type="hidden" name="id" value=r.id />
                                                    <input type="password" name="password" autocomplete="new-password" placeholder=tr("新密码", "New password") required />
                                                    <button type="submit">{tr("重置密码", "Reset password")}</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Suspense>
            <ActionForm action=create attr:class="card narrow" attr:id="create-staff">
                <h2>{tr("新建员工", "New account")}</h2>
                <StaffCsrf />
                <label>{tr("工号", "Username")}<input type="text" name="username" required /></label>
                <label>{tr("姓名", "Name")}<input type="text" name="display_name" required /></label>
                <label>{tr("角色", "Role")}
                    <select name="role">
                        <option value="agent">{tr("客服代表", "Agent")}</option>
                        <option value="supervisor">{tr("值班主管", "Supervisor")}</option>
                        <option value="admin">{tr("系统管理员", "Admin")}</option>
                    </select>
                </label>
                <label>{tr("初始密码(至少 8 位,含字母和数字)", "Initial password (8+ characters, letters and digits)")}
                    <input type="password" name="password" autocomplete="new-password" required />
                </label>
                <ActionError value=create.value() />
                <button type="submit" class="primary">{tr("创建", "Create")}</button>
            </ActionForm>
        </StaffFrame>
    }
}
