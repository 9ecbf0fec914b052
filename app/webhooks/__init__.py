"""What every Twilio webhook shares: the signature check and the TwiML-safe error handling."""
