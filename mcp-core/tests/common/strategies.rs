//! Proptest strategies for the MCP message types.
//!
//! Values are chosen so that they survive JSON exactly: floats are multiples
//! of 1/4, and `Option<Value>` fields never hold `Some(null)` (which JSON
//! cannot tell from absent).

use std::collections::BTreeMap;

use mcp_core::jsonrpc::RequestId;
use mcp_core::types::*;
use proptest::collection::{btree_map, vec};
use proptest::option::of;
use proptest::prelude::*;
use serde_json::Value;

pub(crate) fn text() -> BoxedStrategy<String> {
    "[a-zA-Z0-9 _/:.-]{0,12}".boxed()
}

pub(crate) fn opt_text() -> BoxedStrategy<Option<String>> {
    of(text()).boxed()
}

pub(crate) fn small_u64() -> BoxedStrategy<u64> {
    (0u64..10_000_000).boxed()
}

/// Finite floats that JSON carries exactly.
pub(crate) fn float() -> BoxedStrategy<f64> {
    (-4000i32..4000).prop_map(|n| f64::from(n) / 4.0).boxed()
}

pub(crate) fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-100_000i64..100_000).prop_map(Value::from),
        float().prop_map(Value::from),
        text().prop_map(Value::from),
    ]
    .boxed()
}

pub(crate) fn json() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(2, 12, 3, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..3).prop_map(Value::Array),
                btree_map(text(), inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// Any JSON value but `null`, for `Option<Value>` fields.
pub(crate) fn json_not_null() -> BoxedStrategy<Value> {
    json().prop_filter("null reads back as None", |v| !v.is_null()).boxed()
}

pub(crate) fn object() -> BoxedStrategy<JsonObject> {
    btree_map(text(), json(), 0..3).prop_map(|m| m.into_iter().collect()).boxed()
}

pub(crate) fn meta() -> BoxedStrategy<Option<Meta>> {
    of(object()).boxed()
}

pub(crate) fn request_id() -> BoxedStrategy<RequestId> {
    prop_oneof![any::<i64>().prop_map(RequestId::Number), text().prop_map(RequestId::String)].boxed()
}

pub(crate) fn result_type() -> BoxedStrategy<Option<ResultType>> {
    of(prop_oneof![
        Just(ResultType::Complete),
        Just(ResultType::InputRequired),
        Just(ResultType::Task),
        "x-[a-z]{1,6}".prop_map(ResultType::Other),
    ])
    .boxed()
}

pub(crate) fn cache_scope() -> BoxedStrategy<Option<CacheScope>> {
    of(prop_oneof![Just(CacheScope::Public), Just(CacheScope::Private)]).boxed()
}

pub(crate) fn role() -> BoxedStrategy<Role> {
    prop_oneof![Just(Role::User), Just(Role::Assistant)].boxed()
}

pub(crate) fn annotations() -> BoxedStrategy<Option<Annotations>> {
    of((of(vec(role(), 0..3)), of(float()), opt_text())
        .prop_map(|(audience, priority, last_modified)| Annotations { audience, priority, last_modified }))
    .boxed()
}

pub(crate) fn icons() -> BoxedStrategy<Option<Vec<Icon>>> {
    let theme = of(prop_oneof![Just(IconTheme::Light), Just(IconTheme::Dark)]);
    let icon = (text(), opt_text(), of(vec(text(), 0..2)), theme)
        .prop_map(|(src, mime_type, sizes, theme)| Icon { src, mime_type, sizes, theme });
    of(vec(icon, 0..2)).boxed()
}

pub(crate) fn text_content() -> BoxedStrategy<TextContent> {
    (text(), annotations(), meta())
        .prop_map(|(text, annotations, meta)| TextContent { text, annotations, meta })
        .boxed()
}

pub(crate) fn image_content() -> BoxedStrategy<ImageContent> {
    (text(), text(), annotations(), meta())
        .prop_map(|(data, mime_type, annotations, meta)| ImageContent { data, mime_type, annotations, meta })
        .boxed()
}

pub(crate) fn audio_content() -> BoxedStrategy<AudioContent> {
    (text(), text(), annotations(), meta())
        .prop_map(|(data, mime_type, annotations, meta)| AudioContent { data, mime_type, annotations, meta })
        .boxed()
}

pub(crate) fn resource() -> BoxedStrategy<Resource> {
    ((text(), text(), opt_text(), opt_text(), opt_text()), (of(small_u64()), annotations(), icons(), meta()))
        .prop_map(|((uri, name, title, description, mime_type), (size, annotations, icons, meta))| Resource {
            uri,
            name,
            title,
            description,
            mime_type,
            size,
            annotations,
            icons,
            meta,
        })
        .boxed()
}

pub(crate) fn resource_template() -> BoxedStrategy<ResourceTemplate> {
    ((text(), text(), opt_text(), opt_text(), opt_text()), (annotations(), icons(), meta()))
        .prop_map(|((uri_template, name, title, description, mime_type), (annotations, icons, meta))| {
            ResourceTemplate { uri_template, name, title, description, mime_type, annotations, icons, meta }
        })
        .boxed()
}

pub(crate) fn resource_contents() -> BoxedStrategy<ResourceContents> {
    prop_oneof![
        (text(), opt_text(), text(), meta()).prop_map(|(uri, mime_type, text, meta)| {
            ResourceContents::Text(TextResourceContents { uri, mime_type, text, meta })
        }),
        (text(), opt_text(), text(), meta()).prop_map(|(uri, mime_type, blob, meta)| {
            ResourceContents::Blob(BlobResourceContents { uri, mime_type, blob, meta })
        }),
    ]
    .boxed()
}

pub(crate) fn content_block() -> BoxedStrategy<ContentBlock> {
    prop_oneof![
        text_content().prop_map(ContentBlock::Text),
        image_content().prop_map(ContentBlock::Image),
        audio_content().prop_map(ContentBlock::Audio),
        resource().prop_map(ContentBlock::ResourceLink),
        (resource_contents(), annotations(), meta()).prop_map(|(resource, annotations, meta)| {
            ContentBlock::Resource(EmbeddedResource { resource, annotations, meta })
        }),
    ]
    .boxed()
}

pub(crate) fn task_metadata() -> BoxedStrategy<Option<TaskMetadata>> {
    of(of(small_u64()).prop_map(|ttl| TaskMetadata { ttl })).boxed()
}

pub(crate) fn tool() -> BoxedStrategy<Tool> {
    let hints = (opt_text(), of(any::<bool>()), of(any::<bool>()), of(any::<bool>()), of(any::<bool>()))
        .prop_map(|(title, read_only_hint, destructive_hint, idempotent_hint, open_world_hint)| {
            ToolAnnotations { title, read_only_hint, destructive_hint, idempotent_hint, open_world_hint }
        });
    let support =
        prop_oneof![Just(TaskSupport::Forbidden), Just(TaskSupport::Optional), Just(TaskSupport::Required)];
    let execution = of(support).prop_map(|task_support| ToolExecution { task_support });
    ((text(), opt_text(), opt_text(), object(), of(object())), (of(hints), icons(), of(execution), meta()))
        .prop_map(
            |(
                (name, title, description, input_schema, output_schema),
                (annotations, icons, execution, meta),
            )| {
                Tool {
                    name,
                    title,
                    description,
                    input_schema,
                    output_schema,
                    annotations,
                    icons,
                    execution,
                    meta,
                }
            },
        )
        .boxed()
}

pub(crate) fn paginated() -> BoxedStrategy<PaginatedRequestParams> {
    (opt_text(), meta()).prop_map(|(cursor, meta)| PaginatedRequestParams { cursor, meta }).boxed()
}

pub(crate) fn request_params() -> BoxedStrategy<RequestParams> {
    meta().prop_map(|meta| RequestParams { meta }).boxed()
}

pub(crate) fn notification_params() -> BoxedStrategy<NotificationParams> {
    meta().prop_map(|meta| NotificationParams { meta }).boxed()
}

pub(crate) fn string_map() -> BoxedStrategy<Option<BTreeMap<String, String>>> {
    of(btree_map(text(), text(), 0..3)).boxed()
}

pub(crate) fn call_tool_params() -> BoxedStrategy<CallToolRequestParams> {
    (text(), of(object()), task_metadata(), of(object()), opt_text(), meta())
        .prop_map(|(name, arguments, task, input_responses, request_state, meta)| CallToolRequestParams {
            name,
            arguments,
            task,
            input_responses,
            request_state,
            meta,
        })
        .boxed()
}

pub(crate) fn call_tool_result() -> BoxedStrategy<CallToolResult> {
    (result_type(), vec(content_block(), 0..3), of(json_not_null()), of(any::<bool>()), meta())
        .prop_map(|(result_type, content, structured_content, is_error, meta)| CallToolResult {
            result_type,
            content,
            structured_content,
            is_error,
            meta,
        })
        .boxed()
}

pub(crate) fn list_tools_result() -> BoxedStrategy<ListToolsResult> {
    (result_type(), vec(tool(), 0..3), opt_text(), of(small_u64()), cache_scope(), meta())
        .prop_map(|(result_type, tools, next_cursor, ttl_ms, cache_scope, meta)| ListToolsResult {
            result_type,
            tools,
            next_cursor,
            ttl_ms,
            cache_scope,
            meta,
        })
        .boxed()
}

pub(crate) fn prompt() -> BoxedStrategy<Prompt> {
    let argument = (text(), opt_text(), opt_text(), of(any::<bool>())).prop_map(
        |(name, title, description, required)| PromptArgument { name, title, description, required },
    );
    (text(), opt_text(), opt_text(), of(vec(argument, 0..3)), icons(), meta())
        .prop_map(|(name, title, description, arguments, icons, meta)| Prompt {
            name,
            title,
            description,
            arguments,
            icons,
            meta,
        })
        .boxed()
}

pub(crate) fn get_prompt_params() -> BoxedStrategy<GetPromptRequestParams> {
    (text(), string_map(), of(object()), opt_text(), meta())
        .prop_map(|(name, arguments, input_responses, request_state, meta)| GetPromptRequestParams {
            name,
            arguments,
            input_responses,
            request_state,
            meta,
        })
        .boxed()
}

pub(crate) fn get_prompt_result() -> BoxedStrategy<GetPromptResult> {
    let message = (role(), content_block()).prop_map(|(role, content)| PromptMessage { role, content });
    (result_type(), opt_text(), vec(message, 0..3), meta())
        .prop_map(|(result_type, description, messages, meta)| GetPromptResult {
            result_type,
            description,
            messages,
            meta,
        })
        .boxed()
}

pub(crate) fn list_prompts_result() -> BoxedStrategy<ListPromptsResult> {
    (result_type(), vec(prompt(), 0..3), opt_text(), of(small_u64()), cache_scope(), meta())
        .prop_map(|(result_type, prompts, next_cursor, ttl_ms, cache_scope, meta)| ListPromptsResult {
            result_type,
            prompts,
            next_cursor,
            ttl_ms,
            cache_scope,
            meta,
        })
        .boxed()
}

pub(crate) fn list_resources_result() -> BoxedStrategy<ListResourcesResult> {
    (result_type(), vec(resource(), 0..3), opt_text(), of(small_u64()), cache_scope(), meta())
        .prop_map(|(result_type, resources, next_cursor, ttl_ms, cache_scope, meta)| ListResourcesResult {
            result_type,
            resources,
            next_cursor,
            ttl_ms,
            cache_scope,
            meta,
        })
        .boxed()
}

pub(crate) fn list_resource_templates_result() -> BoxedStrategy<ListResourceTemplatesResult> {
    (result_type(), vec(resource_template(), 0..3), opt_text(), of(small_u64()), cache_scope(), meta())
        .prop_map(|(result_type, resource_templates, next_cursor, ttl_ms, cache_scope, meta)| {
            ListResourceTemplatesResult {
                result_type,
                resource_templates,
                next_cursor,
                ttl_ms,
                cache_scope,
                meta,
            }
        })
        .boxed()
}

pub(crate) fn read_resource_params() -> BoxedStrategy<ReadResourceRequestParams> {
    (text(), of(object()), opt_text(), meta())
        .prop_map(|(uri, input_responses, request_state, meta)| ReadResourceRequestParams {
            uri,
            input_responses,
            request_state,
            meta,
        })
        .boxed()
}

pub(crate) fn read_resource_result() -> BoxedStrategy<ReadResourceResult> {
    (result_type(), vec(resource_contents(), 0..3), of(small_u64()), cache_scope(), meta())
        .prop_map(|(result_type, contents, ttl_ms, cache_scope, meta)| ReadResourceResult {
            result_type,
            contents,
            ttl_ms,
            cache_scope,
            meta,
        })
        .boxed()
}

pub(crate) fn complete_params() -> BoxedStrategy<CompleteRequestParams> {
    let reference = prop_oneof![
        (text(), opt_text()).prop_map(|(name, title)| CompletionReference::Prompt { name, title }),
        text().prop_map(|uri| CompletionReference::Resource { uri }),
    ];
    let context = of(string_map().prop_map(|arguments| CompletionContext { arguments }));
    (reference, text(), text(), context, meta())
        .prop_map(|(r#ref, name, value, context, meta)| CompleteRequestParams {
            r#ref,
            argument: CompletionArgument { name, value },
            context,
            meta,
        })
        .boxed()
}

pub(crate) fn complete_result() -> BoxedStrategy<CompleteResult> {
    (result_type(), vec(text(), 0..4), of(small_u64()), of(any::<bool>()), meta())
        .prop_map(|(result_type, values, total, has_more, meta)| CompleteResult {
            result_type,
            completion: Completion { values, total, has_more },
            meta,
        })
        .boxed()
}

pub(crate) fn logging_level() -> BoxedStrategy<LoggingLevel> {
    proptest::sample::select(LoggingLevel::ALL.to_vec()).boxed()
}

pub(crate) fn implementation() -> BoxedStrategy<Implementation> {
    (text(), text(), opt_text(), opt_text(), opt_text(), icons())
        .prop_map(|(name, version, title, description, website_url, icons)| Implementation {
            name,
            version,
            title,
            description,
            website_url,
            icons,
        })
        .boxed()
}

pub(crate) fn client_capabilities() -> BoxedStrategy<ClientCapabilities> {
    let roots = of(of(any::<bool>()).prop_map(|list_changed| RootsCapability { list_changed }));
    let sampling =
        of((of(object()), of(object())).prop_map(|(context, tools)| SamplingCapability { context, tools }));
    let elicitation =
        of((of(object()), of(object())).prop_map(|(form, url)| ElicitationCapability { form, url }));
    (of(object()), roots, sampling, elicitation, of(json_not_null()), of(object()))
        .prop_map(|(experimental, roots, sampling, elicitation, tasks, extensions)| ClientCapabilities {
            experimental,
            roots,
            sampling,
            elicitation,
            tasks,
            extensions,
        })
        .boxed()
}

pub(crate) fn server_capabilities() -> BoxedStrategy<ServerCapabilities> {
    let flag = || of(any::<bool>());
    let prompts = of(flag().prop_map(|list_changed| PromptsCapability { list_changed }));
    let resources = of((flag(), flag())
        .prop_map(|(subscribe, list_changed)| ResourcesCapability { subscribe, list_changed }));
    let tools = of(flag().prop_map(|list_changed| ToolsCapability { list_changed }));
    (
        (of(object()), of(object()), of(object())),
        (prompts, resources, tools),
        (of(json_not_null()), of(object())),
    )
        .prop_map(
            |((experimental, logging, completions), (prompts, resources, tools), (tasks, extensions))| {
                ServerCapabilities {
                    experimental,
                    logging,
                    completions,
                    prompts,
                    resources,
                    tools,
                    tasks,
                    extensions,
                }
            },
        )
        .boxed()
}
