def test_analyst_creates_and_officer_reads_a_licensee(api):
    created = api.client.post(
        "/api/v1/licensees",
        json={
            "licence_number": "CM-BA-001",
            "licence_type": "buying_house",
            "legal_name": "Comptoir Étoile SARL",
        },
        headers=api.as_role("analyst"),
    )
    assert created.status_code == 201
    ref = created.json()["ref"]
    read = api.client.get(f"/api/v1/licensees/{ref}", headers=api.as_role("officer"))
    assert read.status_code == 200
    assert read.json()["legal_name"] == "Comptoir Étoile SARL"
