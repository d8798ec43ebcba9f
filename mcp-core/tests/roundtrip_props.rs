//! Property tests: every request, notification and result survives
//! typed → JSON → typed unchanged, and every message union satisfies
//! `from_parts(x.method(), x.params()) == x`, also across the JSON-RPC wire.
#![allow(clippy::unwrap_used)]

#[path = "common/strategies.rs"]
mod strategies;

#[path = "common/interaction.rs"]
mod interaction;

use std::fmt::Debug;

use mcp_core::jsonrpc::{Incoming, Message, parse};
use mcp_core::types::*;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use interaction::*;
use strategies::*;

/// typed → JSON text → typed gives back the same value.
fn json_roundtrip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e} in {text}")))?;
    prop_assert_eq!(&back, value, "via {}", text);
    Ok(())
}

/// Reads one message off the wire.
fn wire(bytes: &[u8]) -> Message {
    match parse(bytes).unwrap() {
        Incoming::Single(message) => message,
        Incoming::Batch(_) => panic!("not a batch"),
    }
}

proptest! {
    #[test]
    fn client_requests_round_trip(req in client_request()) {
        let params = req.params();
        prop_assert!(params.as_ref().is_none_or(|p| p.is_object()));
        prop_assert_eq!(ClientRequest::from_parts(req.method(), params).unwrap(), req.clone());
        json_roundtrip(&req)?;
        let Message::Request(on_wire) = wire(&serde_json::to_vec(&req.clone().into_request(7)).unwrap()) else {
            panic!("not a request")
        };
        prop_assert_eq!(ClientRequest::from_request(&on_wire).unwrap(), req);
    }

    #[test]
    fn server_requests_round_trip(req in server_request()) {
        prop_assert_eq!(ServerRequest::from_parts(req.method(), req.params()).unwrap(), req.clone());
        json_roundtrip(&req)?;
        let Message::Request(on_wire) = wire(&serde_json::to_vec(&req.clone().into_request("s-1")).unwrap()) else {
            panic!("not a request")
        };
        prop_assert_eq!(ServerRequest::from_request(&on_wire).unwrap(), req);
    }

    #[test]
    fn client_notifications_round_trip(n in client_notification()) {
        prop_assert_eq!(ClientNotification::from_parts(n.method(), n.params()).unwrap(), n.clone());
        json_roundtrip(&n)?;
        let Message::Notification(on_wire) = wire(&serde_json::to_vec(&n.clone().into_notification()).unwrap()) else {
            panic!("not a notification")
        };
        prop_assert_eq!(ClientNotification::from_notification(&on_wire).unwrap(), n);
    }

    #[test]
    fn server_notifications_round_trip(n in server_notification()) {
        prop_assert_eq!(ServerNotification::from_parts(n.method(), n.params()).unwrap(), n.clone());
        json_roundtrip(&n)?;
        let Message::Notification(on_wire) = wire(&serde_json::to_vec(&n.clone().into_notification()).unwrap()) else {
            panic!("not a notification")
        };
        prop_assert_eq!(ServerNotification::from_notification(&on_wire).unwrap(), n);
    }

    #[test]
    fn input_requests_round_trip(requests in input_requests()) {
        json_roundtrip(&requests)?;
    }
}

/// One `typed → JSON → typed` property per result type.
macro_rules! result_roundtrips {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $name(value in $strategy) {
                    json_roundtrip(&value)?;
                }
            )*
        }
    };
}

result_roundtrips! {
    call_tool_results_round_trip: call_tool_result();
    list_tools_results_round_trip: list_tools_result();
    get_prompt_results_round_trip: get_prompt_result();
    list_prompts_results_round_trip: list_prompts_result();
    list_resources_results_round_trip: list_resources_result();
    list_resource_templates_results_round_trip: list_resource_templates_result();
    read_resource_results_round_trip: read_resource_result();
    complete_results_round_trip: complete_result();
    initialize_results_round_trip: initialize_result();
    discover_results_round_trip: discover_result();
    input_required_results_round_trip: input_required_result();
    create_message_results_round_trip: create_message_result();
    elicit_results_round_trip: elicit_result();
    list_roots_results_round_trip: list_roots_result();
    detailed_tasks_round_trip: detailed_task();
    create_task_results_round_trip: (result_type(), task(), meta())
        .prop_map(|(result_type, task, meta)| CreateTaskResult { result_type, task, meta });
    get_task_results_round_trip: (result_type(), task(), meta())
        .prop_map(|(result_type, task, meta)| GetTaskResult { result_type, task, meta });
    list_tasks_results_round_trip: (result_type(), proptest::collection::vec(task(), 0..3), opt_text(), meta())
        .prop_map(|(result_type, tasks, next_cursor, meta)| ListTasksResult { result_type, tasks, next_cursor, meta });
    subscriptions_listen_results_round_trip: (result_type(), meta())
        .prop_map(|(result_type, meta)| SubscriptionsListenResult { result_type, meta });
    elicitation_schemas_round_trip: elicitation_schema();
    empty_results_round_trip: (result_type(), meta()).prop_map(|(result_type, meta)| EmptyResult { result_type, meta });
}
