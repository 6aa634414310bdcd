"""The SMTP listener: Postfix after-queue content filter or before-queue proxy."""
