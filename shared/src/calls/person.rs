//! Who a conversation was with, as its lead knows them. A call's person is the number on the
//! line; a chat has none, so it is the number or email the conversation collected (ElevenLabs'
//! data collection, then the dynamic variables the page passed in), else ElevenLabs' id for
//! the end user.

use serde_json::Value;

use super::event::Transcript;
use crate::leads::{scoring::Collected, LeadKey};

const NAME: &[&str] = &["customer_name", "name", "user_name", "full_name"];
const EMAIL: &[&str] = &["customer_email", "email", "user_email", "email_address"];
const COMPANY: &[&str] = &["customer_company", "company"];
const PHONE: &[&str] = &["customer_phone", "phone_number", "phone", "user_phone"];

/// What a conversation says about its person, beyond the number on the line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    /// A chat's number as written (calls have theirs on the line).
    pub phone: Option<String>,
    /// A chat's end user at ElevenLabs.
    pub elevenlabs_user: Option<String>,
    pub is_chat: bool,
}

impl Person {
    /// From the data-collection results first (what the person said), then the dynamic
    /// variables (what the page knew).
    pub fn of(t: &Transcript) -> Self {
        let collected: Collected = t
            .analysis
            .as_ref()
            .map(|a| {
                a.collected()
                    .into_iter()
                    .map(|(id, item)| (id, item.get("value").unwrap_or(item)))
                    .collect()
            })
            .unwrap_or_default();
        let said = |names| text(|name| collected.get(name).copied(), names);
        let passed = |names| text(|name| t.dynamic_variables.get(name), names);
        let find = |names| said(names).or_else(|| passed(names));
        Self {
            name: passed(NAME).or_else(|| said(NAME)),
            email: find(EMAIL).filter(|e| e.contains('@')),
            company: passed(COMPANY).or_else(|| said(COMPANY)),
            phone: t.is_chat.then(|| find(PHONE)).flatten(),
            elevenlabs_user: t
                .is_chat
                .then(|| t.user_id.clone())
                .flatten()
                .filter(|u| !u.trim().is_empty()),
            is_chat: t.is_chat,
        }
    }

    /// The lead's key: the number (E.164) when there is one, else a chat's email, else its
    /// ElevenLabs user; none for a call without a usable number.
    pub fn key<'a>(&'a self, number: Option<&'a str>) -> Option<LeadKey<'a>> {
        if let Some(number) = number.filter(|n| n.starts_with('+')) {
            return Some(LeadKey::Phone(number));
        }
        if !self.is_chat {
            return None;
        }
        self.email
            .as_deref()
            .map(LeadKey::Email)
            .or_else(|| self.elevenlabs_user.as_deref().map(LeadKey::ElevenLabsUser))
    }
}

/// The first of `names` that `get` finds as non-blank text.
fn text<'a>(get: impl Fn(&str) -> Option<&'a Value>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|name| get(name))
        .filter_map(Value::as_str)
        .map(str::trim)
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}
