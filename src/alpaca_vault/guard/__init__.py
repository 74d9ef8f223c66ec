"""Trading policy, order preview, human confirmation, durable order intents and their reconciler."""
