"""The model: specs, building with empty parameters and attaching tensors, devices, inputs, and the
backward check."""
