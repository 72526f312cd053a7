//! 账户 at `/account`: who is signed in (name, username, unit, roles, the units a leader
//! oversees) and 修改密码 at `/account/password`. A user whose password was handed out (the
//! shared initial one) is sent to the password page by the session until it is changed.
//!
//! The rules of a new password are `domain::password`'s; the current password is checked by
//! `access::Access::change_password`, under the same lock-out as a sign-in.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use domain::password::{self, PasswordRefusal};
use serde::Deserialize;

use super::{Layout, Session, csrf_refused, render};
use crate::access::{ClientAddress, LoginRefusal};
use crate::app::AppState;
use crate::app::failure::Failure;

/// 账户.
#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    username: String,
    name: String,
    unit: String,
    roles: String,
    oversees: Vec<String>,
    /// A notice above (the password was changed).
    done: bool,
}

/// 修改密码.
#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    /// The password was handed out: say why this page comes first.
    forced: bool,
    /// Why the last attempt was refused, in Chinese.
    error: Option<String>,
    min_chars: usize,
    max_chars: usize,
}

/// `?done=password` after a change.
#[derive(Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
}

/// `GET /account`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<AccountQuery>,
) -> Response {
    let user = &session.user;
    let who = super::who(&state, user);
    render(
        StatusCode::OK,
        &AccountPage {
            layout: Layout::new(&state, &session, "账户"),
            username: user.username.clone(),
            name: user.display_name.clone(),
            unit: state.org().path_label(&user.unit_id),
            roles: who.roles,
            oversees: user
                .oversees
                .iter()
                .map(|id| state.org().path_label(id))
                .collect(),
            done: query.done.as_deref() == Some("password"),
        },
    )
}

fn password_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    render(
        status,
        &PasswordPage {
            layout: Layout::new(state, session, "修改密码"),
            forced: session.user.must_change_password,
            error,
            min_chars: password::MIN_CHARS,
            max_chars: password::MAX_CHARS,
        },
    )
}

/// `GET /account/password`.
pub async fn password_form(State(state): State<AppState>, session: Session) -> Response {
    password_page(&state, &session, StatusCode::OK, None)
}

/// The password form's fields. Bounded by the request body limit; the policy bounds the
/// new password's length before anything is hashed.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    current: String,
    new: String,
    confirm: String,
}

/// `POST /account/password`: the new password checked by the policy (nothing hashed when it
/// fails), then the current one as a sign-in checks it; on success to the account page (or
/// to the work lists, when the change was required).
pub async fn change_password(
    State(state): State<AppState>,
    session: Session,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    let refuse = |refusal: PasswordRefusal| {
        password_page(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(refusal.message().to_owned()),
        )
    };
    if form.new != form.confirm {
        return refuse(PasswordRefusal::Mismatch);
    }
    if form.current.chars().count() > password::MAX_CHARS * 4 {
        return password_page(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("当前密码不正确".to_owned()),
        );
    }
    if let Err(refusal) = password::check_new(&form.new, &session.user.username, &form.current) {
        return refuse(refusal);
    }
    let forced = session.user.must_change_password;
    match state
        .access
        .change_password(
            session.user.username.clone(),
            form.current,
            form.new,
            session.token.clone(),
            client,
        )
        .await
    {
        Ok(()) if forced => Redirect::to("/").into_response(),
        Ok(()) => Redirect::to("/account?done=password").into_response(),
        Err(LoginRefusal::BadCredentials) => password_page(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("当前密码不正确".to_owned()),
        ),
        Err(refusal) => {
            let described = Failure::from(refusal).describe();
            if let Some(cause) = &described.cause {
                tracing::error!(error = %format!("{cause:#}"), "password change failed");
            }
            let status =
                StatusCode::from_u16(described.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            password_page(&state, &session, status, Some(described.title.into_owned()))
        }
    }
}
