"""Model loading: encoders, query generators, the offline default encoder."""
