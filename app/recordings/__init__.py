"""Call recordings: registered from Twilio's callback, downloaded by the worker, then deleted at Twilio."""
