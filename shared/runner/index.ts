export {
  BadEventError,
  eventBridgeEventFromBody,
  failedMessageIds,
  type LambdaIdentity,
  lambdaContext,
  scheduledEvent,
  sqsEvent,
  sqsRecord,
} from './lambda-events.ts';
export {
  asFunction,
  createLocalRunner,
  currentFunction,
  FunctionTimeoutError,
  type InvocationError,
  type LambdaHandler,
  LocalRunner,
  type LocalRunnerOptions,
  RunnerConfigError,
  RunnerTimeoutError,
  type RunUntilIdleOptions,
} from './runner.ts';
