"""Identity and access: citizens, merchants' staff, officers and admins; OTP, tokens, PIN, identity levels,
consent and data rights. Other modules use it only through :mod:`app.identity.service`."""
