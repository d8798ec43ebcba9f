//! Round-trips every JSON example of the MCP specification through the typed
//! messages: parse → typed value → serialize must give back the same JSON.
//!
//! The examples live in `fixtures/`: the JSON code blocks of the specification
//! pages of each revision (`docs-<revision>.json`) and the examples published
//! with the 2026-07-28 schema (`schema-2026-07-28.json`). Each entry names the
//! type it is an instance of and where it was taken from.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use mcp_core::jsonrpc::{ErrorObject, Message, message_from_value};
use mcp_core::types::*;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const BUNDLES: &[(&str, &str)] = &[
    ("docs-2024-11-05", include_str!("fixtures/docs-2024-11-05.json")),
    ("docs-2025-03-26", include_str!("fixtures/docs-2025-03-26.json")),
    ("docs-2025-06-18", include_str!("fixtures/docs-2025-06-18.json")),
    ("docs-2025-11-25", include_str!("fixtures/docs-2025-11-25.json")),
    ("docs-2026-07-28", include_str!("fixtures/docs-2026-07-28.json")),
    ("schema-2026-07-28", include_str!("fixtures/schema-2026-07-28.json")),
];

/// Examples that are not valid instances of their own schema, with the reason.
const NOT_INSTANCES: &[(&str, &str)] = &[(
    "schema/2026-07-28/examples/ListRootsRequest/list-roots-request.json",
    "an input request carrying a JSON-RPC `id` but no `jsonrpc` member",
)];

/// Methods a server sends as requests (legacy revisions).
const SERVER_REQUEST_METHODS: &[&str] =
    &[methods::SAMPLING_CREATE_MESSAGE, methods::ELICITATION_CREATE, methods::ROOTS_LIST];

#[derive(Deserialize)]
struct Example {
    r#type: String,
    source: String,
    json: Value,
}

fn examples(bundle: &str) -> Vec<Example> {
    let text = BUNDLES.iter().find(|(name, _)| *name == bundle).map(|(_, text)| *text).unwrap();
    serde_json::from_str(text).unwrap()
}

fn same_json(original: &Value, back: &Value) -> Result<(), String> {
    if original == back {
        Ok(())
    } else {
        Err(format!("re-serialized JSON differs\n    original: {original}\n    typed:    {back}"))
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| format!("does not parse: {e}"))?;
    same_json(value, &serde_json::to_value(&typed).map_err(|e| e.to_string())?)
}

/// Each answer in an `InputResponses` map is the result type of its request.
fn input_responses(value: &Value) -> Result<(), String> {
    let map = value.as_object().ok_or("not an object")?;
    for answer in map.values() {
        if answer.get("action").is_some() {
            roundtrip::<ElicitResult>(answer)?;
        } else if answer.get("roots").is_some() {
            roundtrip::<ListRootsResult>(answer)?;
        } else {
            roundtrip::<CreateMessageResult>(answer)?;
        }
    }
    Ok(())
}

/// Checks a bare (non JSON-RPC) value against the type its fixture names.
fn check_typed(type_name: &str, value: &Value) -> Result<(), String> {
    match type_name {
        "Tool" => roundtrip::<Tool>(value),
        "CallToolRequestParams" => roundtrip::<CallToolRequestParams>(value),
        "CallToolResult" => roundtrip::<CallToolResult>(value),
        "ListToolsResult" => roundtrip::<ListToolsResult>(value),
        "Prompt" => roundtrip::<Prompt>(value),
        "PromptMessage" => roundtrip::<PromptMessage>(value),
        "GetPromptRequestParams" => roundtrip::<GetPromptRequestParams>(value),
        "GetPromptResult" => roundtrip::<GetPromptResult>(value),
        "ListPromptsResult" => roundtrip::<ListPromptsResult>(value),
        "Resource" => roundtrip::<Resource>(value),
        "ResourceContents" | "TextResourceContents" | "BlobResourceContents" => {
            roundtrip::<ResourceContents>(value)
        }
        "ReadResourceResult" => roundtrip::<ReadResourceResult>(value),
        "ListResourcesResult" => roundtrip::<ListResourcesResult>(value),
        "ListResourceTemplatesResult" => roundtrip::<ListResourceTemplatesResult>(value),
        "ResourceUpdatedNotificationParams" => roundtrip::<ResourceUpdatedNotificationParams>(value),
        "PaginatedRequestParams" => roundtrip::<PaginatedRequestParams>(value),
        "CompleteRequestParams" => roundtrip::<CompleteRequestParams>(value),
        "CompleteResult" => roundtrip::<CompleteResult>(value),
        "EmptyResult" => roundtrip::<EmptyResult>(value),
        "InitializeResult" => roundtrip::<InitializeResult>(value),
        "DiscoverResult" => roundtrip::<DiscoverResult>(value),
        "SubscriptionsListenResult" => roundtrip::<SubscriptionsListenResult>(value),
        "InputRequiredResult" => roundtrip::<InputRequiredResult>(value),
        "InputRequest" | "CreateMessageRequest" | "ElicitRequest" | "ListRootsRequest" => {
            roundtrip::<InputRequest>(value)
        }
        "InputRequests" => roundtrip::<InputRequests>(value),
        "InputResponses" => input_responses(value),
        "CreateMessageRequestParams" => roundtrip::<CreateMessageRequestParams>(value),
        "CreateMessageResult" => roundtrip::<CreateMessageResult>(value),
        "SamplingMessage" => roundtrip::<SamplingMessage>(value),
        "ModelPreferences" => roundtrip::<ModelPreferences>(value),
        "ElicitRequestFormParams" | "ElicitRequestURLParams" => roundtrip::<ElicitRequestParams>(value),
        "ElicitResult" => roundtrip::<ElicitResult>(value),
        "ListRootsResult" => roundtrip::<ListRootsResult>(value),
        "Root" => roundtrip::<Root>(value),
        "CreateTaskResult" => roundtrip::<CreateTaskResult>(value),
        "GetTaskResult" | "CancelTaskResult" => roundtrip::<GetTaskResult>(value),
        "ListTasksResult" => roundtrip::<ListTasksResult>(value),
        "ContentBlock" | "TextContent" | "ImageContent" | "AudioContent" | "EmbeddedResource"
        | "ResourceLink" => roundtrip::<ContentBlock>(value),
        "SamplingContentBlock" | "ToolUseContent" | "ToolResultContent" => {
            roundtrip::<SamplingContentBlock>(value)
        }
        "ClientCapabilities" => roundtrip::<ClientCapabilities>(value),
        "ServerCapabilities" => roundtrip::<ServerCapabilities>(value),
        "PrimitiveSchemaDefinition"
        | "StringSchema"
        | "NumberSchema"
        | "BooleanSchema"
        | "UntitledSingleSelectEnumSchema"
        | "TitledSingleSelectEnumSchema"
        | "UntitledMultiSelectEnumSchema"
        | "TitledMultiSelectEnumSchema" => roundtrip::<PrimitiveSchemaDefinition>(value),
        "CancelledNotificationParams" => roundtrip::<CancelledNotificationParams>(value),
        "ProgressNotificationParams" => roundtrip::<ProgressNotificationParams>(value),
        "LoggingMessageNotificationParams" => roundtrip::<LoggingMessageNotificationParams>(value),
        "InternalError" | "InvalidParamsError" | "MethodNotFoundError" | "ParseError" => {
            roundtrip::<ErrorObject>(value)
        }
        other => Err(format!("the test knows no type named {other}")),
    }
}

/// Checks a JSON-RPC message: the framing round-trips, and so does its typed content.
fn check_envelope(type_name: &str, value: &Value) -> Result<(), String> {
    let message = message_from_value(value.clone()).map_err(|e| format!("not a JSON-RPC message: {e}"))?;
    same_json(value, &serde_json::to_value(&message).map_err(|e| e.to_string())?)?;
    match message {
        Message::Request(req) => {
            let rebuilt = if SERVER_REQUEST_METHODS.contains(&req.method.as_str()) {
                ServerRequest::from_request(&req).map_err(|e| e.to_string())?.into_request(req.id.clone())
            } else {
                ClientRequest::from_request(&req).map_err(|e| e.to_string())?.into_request(req.id.clone())
            };
            same_json(value, &serde_json::to_value(&rebuilt).map_err(|e| e.to_string())?)
        }
        Message::Notification(n) => {
            let rebuilt = match ServerNotification::from_notification(&n) {
                Ok(typed) => typed.into_notification(),
                Err(_) => {
                    ClientNotification::from_notification(&n).map_err(|e| e.to_string())?.into_notification()
                }
            };
            same_json(value, &serde_json::to_value(&rebuilt).map_err(|e| e.to_string())?)
        }
        Message::Response(resp) => {
            let result_type =
                type_name.strip_suffix("Response").ok_or("a response fixture must end in Response")?;
            check_typed(result_type, &resp.result)
        }
        Message::Error(_) => Ok(()),
    }
}

fn check_bundle(bundle: &str) -> usize {
    let examples = examples(bundle);
    let mut failures = Vec::new();
    let mut checked = 0;
    for ex in &examples {
        if NOT_INSTANCES.iter().any(|(source, _)| *source == ex.source) {
            continue;
        }
        let outcome = if ex.json.get("jsonrpc").is_some() {
            check_envelope(&ex.r#type, &ex.json)
        } else {
            check_typed(&ex.r#type, &ex.json)
        };
        match outcome {
            Ok(()) => checked += 1,
            Err(e) => failures.push(format!("{} ({}): {e}", ex.source, ex.r#type)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
    checked
}

#[test]
fn examples_of_2024_11_05_round_trip() {
    assert!(check_bundle("docs-2024-11-05") >= 40);
}

#[test]
fn examples_of_2025_03_26_round_trip() {
    assert!(check_bundle("docs-2025-03-26") >= 40);
}

#[test]
fn examples_of_2025_06_18_round_trip() {
    assert!(check_bundle("docs-2025-06-18") >= 50);
}

#[test]
fn examples_of_2025_11_25_round_trip() {
    assert!(check_bundle("docs-2025-11-25") >= 80);
}

#[test]
fn examples_of_2026_07_28_round_trip() {
    assert!(check_bundle("docs-2026-07-28") >= 60);
}

#[test]
fn schema_examples_of_2026_07_28_round_trip() {
    assert!(check_bundle("schema-2026-07-28") >= 120);
}

#[test]
fn the_key_messages_are_among_the_examples() {
    let types: BTreeSet<String> =
        BUNDLES.iter().flat_map(|(name, _)| examples(name)).map(|ex| ex.r#type).collect();
    for needed in [
        "ListToolsResultResponse",
        "CallToolResult",
        "ReadResourceResultResponse",
        "GetPromptResultResponse",
        "ElicitRequest",
        "CreateMessageRequest",
        "DiscoverResultResponse",
        "InputRequiredResult",
        "SubscriptionsAcknowledgedNotification",
        "InitializeRequest",
        "InitializeResultResponse",
        "GetTaskResultResponse",
        "TaskStatusNotification",
        "ElicitationCompleteNotification",
    ] {
        assert!(types.contains(needed), "no example of {needed}");
    }
}

#[test]
fn a_structured_tool_result_keeps_its_structure() {
    let ex = examples("schema-2026-07-28")
        .into_iter()
        .find(|ex| ex.source.ends_with("CallToolResult/result-with-structured-content.json"))
        .unwrap();
    let result: CallToolResult = serde_json::from_value(ex.json).unwrap();
    assert_eq!(result.result_type, Some(ResultType::Complete));
    assert_eq!(result.structured_content.unwrap()["temperature"], 22.5);
}

#[test]
fn an_input_required_result_names_its_requests() {
    let ex = examples("schema-2026-07-28")
        .into_iter()
        .find(|ex| ex.r#type == "InputRequiredResult" && ex.json.get("inputRequests").is_some())
        .unwrap();
    let result: InputRequiredResult = serde_json::from_value(ex.json).unwrap();
    let requests = result.input_requests.unwrap();
    assert!(matches!(requests["github_login"], InputRequest::Elicitation { .. }));
    assert!(matches!(requests["capital_of_france"], InputRequest::Sampling { .. }));
    assert!(result.request_state.is_some());
}
