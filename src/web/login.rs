//! `/login` and `/logout`: signing in through the API's own login path (`access::Access`:
//! lock-out, bounded hashing, audit) into a cookie session.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::{self, Session};
use super::{Layout, render};
use crate::access::ClientAddress;
use crate::app::AppState;
use crate::app::failure::Failure;

/// 登录.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    username: String,
    /// Why the last attempt failed, in Chinese.
    error: Option<String>,
    /// The form's own CSRF token (the value of its cookie).
    token: String,
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    login_token: Option<String>,
}

/// The sign-in page with `token` in the form and in its cookie.
fn login_page(
    state: &AppState,
    status: StatusCode,
    username: String,
    error: Option<String>,
    token: Option<String>,
) -> Response {
    let Some(token) = token.or_else(session::new_login_token) else {
        tracing::error!("no random bytes for the sign-in form");
        return (StatusCode::INTERNAL_SERVER_ERROR, "系统内部错误").into_response();
    };
    let mut res = render(
        status,
        &LoginPage {
            layout: Layout::anonymous("登录"),
            username,
            error,
            token: token.clone(),
        },
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        session::set_login_cookie(&token, state.access.secure_cookies()),
    );
    res
}

/// `GET /login`: the form (or, already signed in, the work lists).
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed_in = session::cookie_token(&headers)
        .is_some_and(|token| state.directory.authenticate(&token).is_some());
    if signed_in {
        return Redirect::to("/").into_response();
    }
    login_page(&state, StatusCode::OK, String::new(), None, None)
}

/// `POST /login`: checks the password as `POST /api/v1/auth/login` does and sets the session
/// cookie; a refusal shows the form again with its Chinese message.
pub async fn submit(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let username = form.username.trim().to_owned();
    if !session::login_csrf_ok(&headers, form.login_token.as_deref()) {
        // No password is checked: the form did not come from this site's sign-in page (or
        // its hour passed). A fresh form, with a fresh token, says so.
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            username,
            Some("登录页面已过期，请重新输入后登录".to_owned()),
            None,
        );
    }
    match state
        .access
        .login(username.clone(), form.password, client)
        .await
    {
        Ok(logged_in) => {
            let next = if logged_in.user.must_change_password {
                session::PASSWORD_PAGE
            } else {
                "/"
            };
            let secure = state.access.secure_cookies();
            let mut res = Redirect::to(next).into_response();
            let headers = res.headers_mut();
            headers.append(
                header::SET_COOKIE,
                session::set_cookie(&logged_in.token, secure),
            );
            headers.append(header::SET_COOKIE, session::clear_login_cookie(secure));
            res
        }
        Err(refusal) => {
            let described = Failure::from(refusal).describe();
            if let Some(cause) = &described.cause {
                tracing::error!(error = %format!("{cause:#}"), "sign-in failed");
            }
            let status =
                StatusCode::from_u16(described.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut res = login_page(
                &state,
                status,
                username,
                Some(described.title.into_owned()),
                form.login_token,
            );
            if let Some(secs) = described.retry_after
                && let Ok(value) = secs.to_string().parse()
            {
                res.headers_mut().insert(header::RETRY_AFTER, value);
            }
            res
        }
    }
}

/// The sign-out form's field.
#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /logout`: ends the session (as `POST /api/v1/auth/logout` does) and clears the
/// cookie.
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return super::csrf_refused(&state, &session);
    }
    if let Some(username) = state.directory.logout(&session.token) {
        state.app.share_logout(&session.token).await;
        state.access.logged_out(username);
    }
    (
        [(
            header::SET_COOKIE,
            session::clear_cookie(state.access.secure_cookies()),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}
