//! Proptest strategies for sampling, elicitation, MRTR, tasks, subscriptions,
//! lifecycle and the message unions.

use mcp_core::types::*;
use proptest::collection::{btree_map, vec};
use proptest::option::of;
use proptest::prelude::*;

use crate::strategies::*;

pub(crate) fn sampling_block() -> BoxedStrategy<SamplingContentBlock> {
    let tool_use = (text(), text(), object(), meta()).prop_map(|(id, name, input, meta)| ToolUseContent {
        id,
        name,
        input,
        meta,
    });
    let tool_result = (text(), vec(content_block(), 0..2), of(json_not_null()), of(any::<bool>()), meta())
        .prop_map(|(tool_use_id, content, structured_content, is_error, meta)| ToolResultContent {
            tool_use_id,
            content,
            structured_content,
            is_error,
            meta,
        });
    prop_oneof![
        text_content().prop_map(SamplingContentBlock::Text),
        image_content().prop_map(SamplingContentBlock::Image),
        audio_content().prop_map(SamplingContentBlock::Audio),
        tool_use.prop_map(SamplingContentBlock::ToolUse),
        tool_result.prop_map(SamplingContentBlock::ToolResult),
    ]
    .boxed()
}

pub(crate) fn sampling_content() -> BoxedStrategy<SamplingContent> {
    prop_oneof![
        sampling_block().prop_map(SamplingContent::Single),
        vec(sampling_block(), 0..3).prop_map(SamplingContent::Multiple),
    ]
    .boxed()
}

pub(crate) fn create_message_params() -> BoxedStrategy<CreateMessageRequestParams> {
    let message = (role(), sampling_content(), meta()).prop_map(|(role, content, meta)| SamplingMessage {
        role,
        content,
        meta,
    });
    let hint = opt_text().prop_map(|name| ModelHint { name });
    let preferences = (of(vec(hint, 0..2)), of(float()), of(float()), of(float())).prop_map(
        |(hints, cost_priority, speed_priority, intelligence_priority)| ModelPreferences {
            hints,
            cost_priority,
            speed_priority,
            intelligence_priority,
        },
    );
    let include = prop_oneof![
        Just(IncludeContext::None),
        Just(IncludeContext::ThisServer),
        Just(IncludeContext::AllServers)
    ];
    let choice_mode =
        prop_oneof![Just(ToolChoiceMode::Auto), Just(ToolChoiceMode::Required), Just(ToolChoiceMode::None)];
    let choice = of(choice_mode).prop_map(|mode| ToolChoice { mode });
    (
        (vec(message, 0..3), of(preferences), opt_text(), of(include), of(float()), small_u64()),
        (
            of(vec(text(), 0..2)),
            of(json_not_null()),
            of(vec(tool(), 0..2)),
            of(choice),
            task_metadata(),
            meta(),
        ),
    )
        .prop_map(
            |(
                (messages, model_preferences, system_prompt, include_context, temperature, max_tokens),
                (stop_sequences, metadata, tools, tool_choice, task, meta),
            )| CreateMessageRequestParams {
                messages,
                model_preferences,
                system_prompt,
                include_context,
                temperature,
                max_tokens,
                stop_sequences,
                metadata,
                tools,
                tool_choice,
                task,
                meta,
            },
        )
        .boxed()
}

pub(crate) fn create_message_result() -> BoxedStrategy<CreateMessageResult> {
    (role(), sampling_content(), text(), opt_text(), meta())
        .prop_map(|(role, content, model, stop_reason, meta)| CreateMessageResult {
            role,
            content,
            model,
            stop_reason,
            meta,
        })
        .boxed()
}

pub(crate) fn elicit_params() -> BoxedStrategy<ElicitRequestParams> {
    let mode = of(prop_oneof![Just(ElicitMode::Form), Just(ElicitMode::Url)]);
    ((mode, text(), of(object())), (opt_text(), opt_text(), task_metadata(), meta()))
        .prop_map(|((mode, message, requested_schema), (url, elicitation_id, task, meta))| {
            ElicitRequestParams { mode, message, requested_schema, url, elicitation_id, task, meta }
        })
        .boxed()
}

pub(crate) fn elicit_result() -> BoxedStrategy<ElicitResult> {
    let action =
        prop_oneof![Just(ElicitAction::Accept), Just(ElicitAction::Decline), Just(ElicitAction::Cancel)];
    (action, of(object()), meta())
        .prop_map(|(action, content, meta)| ElicitResult { action, content, meta })
        .boxed()
}

pub(crate) fn list_roots_result() -> BoxedStrategy<ListRootsResult> {
    let root = (text(), opt_text(), meta()).prop_map(|(uri, name, meta)| Root { uri, name, meta });
    (vec(root, 0..3), meta()).prop_map(|(roots, meta)| ListRootsResult { roots, meta }).boxed()
}

pub(crate) fn input_request() -> BoxedStrategy<InputRequest> {
    prop_oneof![
        elicit_params().prop_map(|params| InputRequest::Elicitation { params }),
        create_message_params().prop_map(|params| InputRequest::Sampling { params }),
        of(object()).prop_map(|params| InputRequest::ListRoots { params }),
    ]
    .boxed()
}

pub(crate) fn input_requests() -> BoxedStrategy<InputRequests> {
    btree_map(text(), input_request(), 0..3).boxed()
}

pub(crate) fn input_required_result() -> BoxedStrategy<InputRequiredResult> {
    (of(input_requests()), opt_text(), meta())
        .prop_map(|(input_requests, request_state, meta)| InputRequiredResult {
            result_type: ResultType::InputRequired,
            input_requests,
            request_state,
            meta,
        })
        .boxed()
}

pub(crate) fn task_status() -> BoxedStrategy<TaskStatus> {
    prop_oneof![
        Just(TaskStatus::Working),
        Just(TaskStatus::InputRequired),
        Just(TaskStatus::Completed),
        Just(TaskStatus::Failed),
        Just(TaskStatus::Cancelled),
    ]
    .boxed()
}

pub(crate) fn task() -> BoxedStrategy<Task> {
    (text(), task_status(), opt_text(), text(), text(), of(small_u64()), of(small_u64()))
        .prop_map(|(task_id, status, status_message, created_at, last_updated_at, ttl, poll_interval)| Task {
            task_id,
            status,
            status_message,
            created_at,
            last_updated_at,
            ttl,
            poll_interval,
        })
        .boxed()
}

pub(crate) fn detailed_task() -> BoxedStrategy<DetailedTask> {
    (
        (result_type(), text(), task_status(), opt_text(), text(), text()),
        (of(small_u64()), of(small_u64()), of(input_requests()), of(object()), of(object()), meta()),
    )
        .prop_map(
            |(
                (result_type, task_id, status, status_message, created_at, last_updated_at),
                (ttl_ms, poll_interval_ms, input_requests, result, error, meta),
            )| DetailedTask {
                result_type,
                task_id,
                status,
                status_message,
                created_at,
                last_updated_at,
                ttl_ms,
                poll_interval_ms,
                input_requests,
                result,
                error,
                meta,
            },
        )
        .boxed()
}

pub(crate) fn get_task_params() -> BoxedStrategy<GetTaskRequestParams> {
    (text(), meta()).prop_map(|(task_id, meta)| GetTaskRequestParams { task_id, meta }).boxed()
}

pub(crate) fn task_status_params() -> BoxedStrategy<TaskStatusNotificationParams> {
    (task(), meta()).prop_map(|(task, meta)| TaskStatusNotificationParams { task, meta }).boxed()
}

pub(crate) fn subscription_filter() -> BoxedStrategy<SubscriptionFilter> {
    let flag = || of(any::<bool>());
    (flag(), flag(), flag(), of(vec(text(), 0..2)), of(vec(text(), 0..2)))
        .prop_map(
            |(
                tools_list_changed,
                prompts_list_changed,
                resources_list_changed,
                resource_subscriptions,
                task_ids,
            )| {
                SubscriptionFilter {
                    tools_list_changed,
                    prompts_list_changed,
                    resources_list_changed,
                    resource_subscriptions,
                    task_ids,
                }
            },
        )
        .boxed()
}

pub(crate) fn initialize_params() -> BoxedStrategy<InitializeRequestParams> {
    (text(), client_capabilities(), implementation(), meta())
        .prop_map(|(protocol_version, capabilities, client_info, meta)| InitializeRequestParams {
            protocol_version,
            capabilities,
            client_info,
            meta,
        })
        .boxed()
}

pub(crate) fn initialize_result() -> BoxedStrategy<InitializeResult> {
    (text(), server_capabilities(), implementation(), opt_text(), meta())
        .prop_map(|(protocol_version, capabilities, server_info, instructions, meta)| InitializeResult {
            protocol_version,
            capabilities,
            server_info,
            instructions,
            meta,
        })
        .boxed()
}

pub(crate) fn discover_result() -> BoxedStrategy<DiscoverResult> {
    (
        result_type(),
        vec(text(), 0..3),
        server_capabilities(),
        opt_text(),
        of(small_u64()),
        cache_scope(),
        meta(),
    )
        .prop_map(
            |(result_type, supported_versions, capabilities, instructions, ttl_ms, cache_scope, meta)| {
                DiscoverResult {
                    result_type,
                    supported_versions,
                    capabilities,
                    instructions,
                    ttl_ms,
                    cache_scope,
                    meta,
                }
            },
        )
        .boxed()
}

pub(crate) fn progress_params() -> BoxedStrategy<ProgressNotificationParams> {
    (request_id(), float(), of(float()), opt_text(), meta())
        .prop_map(|(progress_token, progress, total, message, meta)| ProgressNotificationParams {
            progress_token,
            progress,
            total,
            message,
            meta,
        })
        .boxed()
}

pub(crate) fn cancelled_params() -> BoxedStrategy<CancelledNotificationParams> {
    (of(request_id()), opt_text(), meta())
        .prop_map(|(request_id, reason, meta)| CancelledNotificationParams { request_id, reason, meta })
        .boxed()
}

pub(crate) fn client_request() -> BoxedStrategy<ClientRequest> {
    use ClientRequest as R;
    prop_oneof![
        Just(R::Ping),
        initialize_params().prop_map(R::Initialize),
        meta().prop_map(|meta| R::Discover(DiscoverRequestParams { meta })),
        paginated().prop_map(R::ListTools),
        call_tool_params().prop_map(R::CallTool),
        paginated().prop_map(R::ListPrompts),
        get_prompt_params().prop_map(R::GetPrompt),
        paginated().prop_map(R::ListResources),
        paginated().prop_map(R::ListResourceTemplates),
        read_resource_params().prop_map(R::ReadResource),
        (text(), meta()).prop_map(|(uri, meta)| R::Subscribe(SubscribeRequestParams { uri, meta })),
        (text(), meta()).prop_map(|(uri, meta)| R::Unsubscribe(UnsubscribeRequestParams { uri, meta })),
        complete_params().prop_map(R::Complete),
        (logging_level(), meta())
            .prop_map(|(level, meta)| R::SetLevel(SetLevelRequestParams { level, meta })),
        (subscription_filter(), meta()).prop_map(|(notifications, meta)| {
            R::SubscriptionsListen(SubscriptionsListenRequestParams { notifications, meta })
        }),
        get_task_params().prop_map(R::GetTask),
        get_task_params().prop_map(R::GetTaskPayload),
        paginated().prop_map(R::ListTasks),
        get_task_params().prop_map(R::CancelTask),
        (text(), object(), meta()).prop_map(|(task_id, input_responses, meta)| {
            R::UpdateTask(UpdateTaskRequestParams { task_id, input_responses, meta })
        }),
    ]
    .boxed()
}

pub(crate) fn client_notification() -> BoxedStrategy<ClientNotification> {
    use ClientNotification as N;
    prop_oneof![
        notification_params().prop_map(N::Initialized),
        cancelled_params().prop_map(N::Cancelled),
        progress_params().prop_map(N::Progress),
        notification_params().prop_map(N::RootsListChanged),
        task_status_params().prop_map(N::TaskStatus),
    ]
    .boxed()
}

pub(crate) fn server_request() -> BoxedStrategy<ServerRequest> {
    use ServerRequest as R;
    prop_oneof![
        Just(R::Ping),
        create_message_params().prop_map(R::CreateMessage),
        elicit_params().prop_map(R::Elicit),
        request_params().prop_map(R::ListRoots),
        get_task_params().prop_map(R::GetTask),
        get_task_params().prop_map(R::GetTaskPayload),
        paginated().prop_map(R::ListTasks),
        get_task_params().prop_map(R::CancelTask),
    ]
    .boxed()
}

pub(crate) fn server_notification() -> BoxedStrategy<ServerNotification> {
    use ServerNotification as N;
    let log = (logging_level(), opt_text(), json(), meta()).prop_map(|(level, logger, data, meta)| {
        LoggingMessageNotificationParams { level, logger, data, meta }
    });
    prop_oneof![
        cancelled_params().prop_map(N::Cancelled),
        progress_params().prop_map(N::Progress),
        log.prop_map(N::LoggingMessage),
        (text(), meta())
            .prop_map(|(uri, meta)| N::ResourceUpdated(ResourceUpdatedNotificationParams { uri, meta })),
        notification_params().prop_map(N::ResourceListChanged),
        notification_params().prop_map(N::ToolListChanged),
        notification_params().prop_map(N::PromptListChanged),
        (text(), meta()).prop_map(|(elicitation_id, meta)| {
            N::ElicitationComplete(ElicitationCompleteNotificationParams { elicitation_id, meta })
        }),
        (subscription_filter(), meta()).prop_map(|(notifications, meta)| {
            N::SubscriptionsAcknowledged(SubscriptionsAcknowledgedNotificationParams { notifications, meta })
        }),
        task_status_params().prop_map(N::TaskStatus),
        detailed_task().prop_map(N::Tasks),
    ]
    .boxed()
}

pub(crate) fn elicitation_schema() -> BoxedStrategy<ElicitationSchema> {
    let titled = || vec((text(), text()).prop_map(|(value, title)| EnumOption { value, title }), 0..3);
    let field = prop_oneof![
        (opt_text(), of(0u64..10), of(0u64..10), opt_text(), opt_text()).prop_map(
            |(title, min_length, max_length, pattern, default)| {
                PrimitiveSchemaDefinition::String(StringSchema {
                    title,
                    min_length,
                    max_length,
                    pattern,
                    default,
                    ..StringSchema::default()
                })
            }
        ),
        (
            prop_oneof![Just(NumberType::Number), Just(NumberType::Integer)],
            of(float()),
            of(float()),
            of(float())
        )
            .prop_map(|(r#type, minimum, maximum, default)| {
                PrimitiveSchemaDefinition::Number(NumberSchema {
                    r#type,
                    minimum,
                    maximum,
                    default,
                    ..NumberSchema::default()
                })
            }),
        (opt_text(), of(any::<bool>())).prop_map(|(description, default)| {
            PrimitiveSchemaDefinition::Boolean(BooleanSchema {
                description,
                default,
                ..BooleanSchema::default()
            })
        }),
        (vec(text(), 0..3), opt_text()).prop_map(|(enum_values, default)| {
            PrimitiveSchemaDefinition::UntitledSingleSelect(UntitledSingleSelectEnumSchema {
                enum_values,
                default,
                ..UntitledSingleSelectEnumSchema::default()
            })
        }),
        (titled(), opt_text()).prop_map(|(one_of, default)| {
            PrimitiveSchemaDefinition::TitledSingleSelect(TitledSingleSelectEnumSchema {
                one_of,
                default,
                ..TitledSingleSelectEnumSchema::default()
            })
        }),
        (vec(text(), 0..3), vec(text(), 0..3)).prop_map(|(enum_values, enum_names)| {
            PrimitiveSchemaDefinition::LegacyTitledEnum(LegacyTitledEnumSchema {
                enum_values,
                enum_names,
                ..LegacyTitledEnumSchema::default()
            })
        }),
        (vec(text(), 0..3), of(0u64..5), of(vec(text(), 0..2))).prop_map(
            |(enum_values, min_items, default)| {
                PrimitiveSchemaDefinition::UntitledMultiSelect(UntitledMultiSelectEnumSchema {
                    min_items,
                    items: UntitledEnumItems { enum_values, ..UntitledEnumItems::default() },
                    default,
                    ..UntitledMultiSelectEnumSchema::default()
                })
            }
        ),
        (titled(), of(0u64..5)).prop_map(|(any_of, max_items)| {
            PrimitiveSchemaDefinition::TitledMultiSelect(TitledMultiSelectEnumSchema {
                max_items,
                items: TitledEnumItems { any_of },
                ..TitledMultiSelectEnumSchema::default()
            })
        }),
    ];
    (opt_text(), btree_map(text(), field, 0..4), of(vec(text(), 0..2)))
        .prop_map(|(schema, properties, required)| ElicitationSchema {
            schema,
            properties,
            required,
            ..ElicitationSchema::default()
        })
        .boxed()
}
