"""Mock APNs, FCM and carrier servers plus a simulated device fleet (tests, demo, bench)."""
