"""Merchants: onboarding, VietQR codes, QR payments, refunds, webhooks and daily settlement."""
