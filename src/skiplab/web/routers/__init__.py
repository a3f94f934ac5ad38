"""One router per resource; each declares typed request and response models."""
