"""The `features` stage: frozen encoders (torch or ONNX Runtime) and the checksummed feature cache."""
