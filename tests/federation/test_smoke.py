from tests.federation.conftest import wait_for


def test_alert_from_cm_reaches_cf_and_cd(network):
    cm, cf, cd = network
    with cm.api("analyst") as api:
        sent = api.post(
            "/api/v1/alerts",
            json={
                "category": "seizure",
                "severity": "urgent",
                "title": "Colis saisi à Bangui",
                "body": "312 pierres brutes, certificat KP falsifié",
                "handling": "AMBER",
            },
        )
        assert sent.status_code == 201, sent.text
    for peer in (cf, cd):
        with peer.api("officer") as api:
            inbox = wait_for(lambda api=api: api.get("/api/v1/alerts?direction=inbound").json())
            assert inbox[0]["title"] == "Colis saisi à Bangui"
            assert inbox[0]["origin"] == "CM"
